"""A GRPO run whose parent never earns a reward has nothing to learn from: say so early, once.

Both engines use it: the TRL engine's trainer callback (``tools/train/engines/loss_guard.py``) with each
logged step's mean reward, and EasyR1's batch reward function (``rewards/easyr1.py``, which runs once per
step in the reward manager) with each step's rewards.
"""

from __future__ import annotations

import sys


class ZeroRewardWatch:
    """Warn on stderr, once, when the first ``k`` steps all have a mean reward of exactly 0."""

    def __init__(self, k: int = 5) -> None:
        self.k = k
        self.means: list[float] = []

    def observe(self, mean_reward: float, step: int | None = None) -> None:
        """Record one step's mean reward; warn when it is the ``k``-th zero in a row from the start."""
        if len(self.means) >= self.k:
            return
        self.means.append(float(mean_reward))
        if len(self.means) < self.k or any(self.means):
            return
        where = f" (up to step {step})" if step is not None else ""
        print(
            f"\nwarning: the reward is 0 on all of the first {self.k} steps{where}: the parent model "
            "never produces the rewarded <think>...</think><answer>...</answer> format, so GRPO has nothing "
            "to learn from. Check the parent's outputs (pathvlm eval: format_ok) or train it longer.",
            file=sys.stderr,
            flush=True,
        )
