"""Stop a Hugging Face Trainer whose training has diverged: K consecutive logged steps with a NaN or inf loss
or grad-norm, or (SFT) a loss of exactly 0 (Qwen2.5-VL full SFT can collapse to loss 0 with a NaN grad-norm:
LLaMA-Factory issues 8563, 7388).

``LossGuard(k, zero_loss_is_bad)`` is a plain ``transformers.TrainerCallback``: pass it to any Trainer
(``callbacks=[...]``; the TRL GRPO engine does, and so does LLaMA-Factory's ``run_exp(callbacks=...)``). It
raises ``LossDiverged``, whose message starts with ``MARKER`` and names the steps, losses and grad-norms, so
the engine exits with an error instead of training on and exporting a dead model; the runner quotes
that line (``failure.guard_line``). A zero loss counts only where it cannot be healthy: transformers logs the
loss rounded to 4 decimals, and a GRPO loss is about 0 on every healthy step (zero-mean advantages, the
policy near its reference), so the GRPO engine passes ``zero_loss_is_bad=False`` and relies on NaN/inf.

``RewardWatch(k)`` (GRPO) warns once when the first ``k`` logged steps all have a mean reward of 0: the
parent model never produces the rewarded format, so GRPO has no signal to learn from (all advantages 0).
"""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from rewards.watch import ZeroRewardWatch
from tools.train.failure import LOSS_GUARD_MARKER as MARKER


class LossDiverged(RuntimeError):
    """``k`` consecutive logged steps had a NaN/inf loss or grad-norm (or a zero loss, where that is bad)."""


def _finite(value: Any) -> bool:
    return value is None or math.isfinite(float(value))


class LossGuard(TrainerCallback):
    """Raise ``LossDiverged`` after ``k`` consecutive bad logged steps (see the module docstring)."""

    def __init__(self, k: int, zero_loss_is_bad: bool = True) -> None:
        if k < 1:
            raise ValueError(f"loss guard: k = {k}, expected at least 1 consecutive step")
        self.k = k
        self.zero_loss_is_bad = zero_loss_is_bad
        self.bad: list[tuple[int, float, float | None]] = []  # (step, loss, grad_norm) of the current run

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any
    ) -> None:
        if not logs or "loss" not in logs:
            return  # evaluation or end-of-training summaries carry no training loss
        loss, grad_norm = float(logs["loss"]), logs.get("grad_norm")
        bad = not _finite(loss) or not _finite(grad_norm) or (self.zero_loss_is_bad and loss == 0.0)
        if not bad:
            self.bad.clear()
            return
        self.bad.append((state.global_step, loss, None if grad_norm is None else float(grad_norm)))
        if len(self.bad) >= self.k:
            steps = ", ".join(f"step {s}: loss {v}, grad-norm {g}" for s, v, g in self.bad[-self.k :])
            zero = " or exactly 0" if self.zero_loss_is_bad else ""
            raise LossDiverged(
                f"{MARKER} training stopped at step {state.global_step}: loss or grad-norm NaN/inf{zero} on "
                f"{self.k} consecutive logged steps ({steps}). Lower the learning rate, check the data and "
                "precision (bf16/DeepSpeed), then retrain with --force (recipe key loss_guard_steps = K)."
            )


class RewardWatch(TrainerCallback):
    """The TRL engine's ``rewards.watch.ZeroRewardWatch``: fed each logged step's mean ``reward``."""

    def __init__(self, k: int = 5) -> None:
        self.watch = ZeroRewardWatch(k)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any
    ) -> None:
        if logs and "reward" in logs:
            self.watch.observe(logs["reward"], state.global_step)
