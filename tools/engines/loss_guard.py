"""Stop a Hugging Face Trainer whose loss has diverged: K consecutive logged steps with a NaN, inf or
exactly-0 loss (Qwen2.5-VL full SFT can collapse to loss 0 with a NaN grad-norm: LLaMA-Factory issues 8563,
7388).

``LossGuard(k)`` is a plain ``transformers.TrainerCallback``: pass it to any Trainer (``callbacks=[...]``; the
TRL GRPO engine does, and so does LLaMA-Factory's ``run_exp(callbacks=...)``). It raises ``LossDiverged``,
whose message starts with ``MARKER`` and names the step, the loss and the grad-norm, so the engine exits with
an error instead of training on and exporting a dead model; the runner quotes that line (``diverged_line``).
GRPO exception: updates on a rollout batch in which every group's rewards were equal (TRL's
``frac_reward_zero_std`` = 1, logged with the batch's first update) have no advantage, and their loss may be
exactly 0 legitimately; such steps (with a finite grad-norm) neither count nor reset the count.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

MARKER = "loss guard:"


class LossDiverged(RuntimeError):
    """The loss was NaN, inf or exactly 0 on ``k`` consecutive logged steps."""


def _bad(loss: float) -> bool:
    return math.isnan(loss) or math.isinf(loss) or loss == 0.0


class LossGuard(TrainerCallback):
    """Raise ``LossDiverged`` after ``k`` consecutive logged losses that are NaN, inf or exactly 0."""

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"loss guard: k = {k}, expected at least 1 consecutive step")
        self.k = k
        self.bad: list[tuple[int, float, float | None]] = []  # (step, loss, grad_norm) of the current run
        self.no_advantage = False  # GRPO: the current rollout batch had equal rewards in every group

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any
    ) -> None:
        if not logs or "loss" not in logs:
            return  # evaluation or end-of-training summaries carry no training loss
        loss = float(logs["loss"])
        if "frac_reward_zero_std" in logs:  # a new rollout batch
            self.no_advantage = logs["frac_reward_zero_std"] == 1.0
        grad_norm = logs.get("grad_norm")
        if loss == 0.0 and self.no_advantage and (grad_norm is None or math.isfinite(grad_norm)):
            return  # GRPO: no advantage in this rollout batch, a zero loss is expected
        if not _bad(loss):
            self.bad.clear()
            return
        self.bad.append((state.global_step, loss, None if grad_norm is None else float(grad_norm)))
        if len(self.bad) >= self.k:
            steps = ", ".join(f"step {s}: loss {v}, grad-norm {g}" for s, v, g in self.bad[-self.k :])
            raise LossDiverged(
                f"{MARKER} training stopped at step {state.global_step}: the loss was NaN, inf or exactly "
                f"0 on {self.k} consecutive logged steps ({steps}). Lower the learning rate, check the data "
                "and precision (bf16/DeepSpeed), then retrain with --force (recipe key loss_guard_steps = K)."
            )


def diverged_line(log: Path, offset: int = 0) -> str | None:
    """The guard's message in an engine log after byte ``offset`` (where this attempt began), if any."""
    if not log.is_file():
        return None
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if MARKER in line]
    return lines[-1][lines[-1].index(MARKER) :].strip() if lines else None
