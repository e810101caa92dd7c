"""Stop a run whose judge keeps failing: a judge outage must not turn r1 into a rescaled accuracy reward.

``JudgeGuard(max_failure_rate, steps)`` watches one reward call (one training step) at a time: a step is bad
when more than ``max_failure_rate`` of the responses sent to the judge got a fallback; after ``steps``
consecutive bad steps ``record`` raises ``JudgeOutage``, whose message starts with ``MARKER`` and gives the
per-step counts, the failure reasons of the last step and the last error. The reward function raises it into
the trainer: TRL's ``trainer.train`` and EasyR1's reward manager (a Ray actor, whose error kills the run)
stop there, and the checkpoints already written stay for the resume; the runner quotes that line. A step
that sent nothing to the judge (every response failed the format check) neither breaks nor extends a streak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MARKER = "judge guard:"


class JudgeOutage(RuntimeError):
    """``steps`` consecutive steps had more than ``max_failure_rate`` of their judge calls fall back."""


def guard_problems(rate: object, steps: object) -> list[str]:
    """What is wrong with the guard's recipe keys (``judge_max_failure_rate``, ``judge_guard_steps``)."""
    problems = []
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        problems.append(f"judge_max_failure_rate: {rate!r}, expected a number in [0, 1)")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        problems.append(f"judge_guard_steps: {steps!r}, expected an integer >= 1")
    return problems


@dataclass
class JudgeGuard:
    """Raise ``JudgeOutage`` after ``steps`` consecutive bad steps (see the module docstring)."""

    max_failure_rate: float = 0.2
    steps: int = 5
    streak: list[tuple[int, int]] = field(default_factory=list)  # (fell back, sent) of the bad steps
    step: int = 0

    def __post_init__(self) -> None:
        if problems := guard_problems(self.max_failure_rate, self.steps):
            raise ValueError("; ".join(problems))

    def record(self, failed: int, sent: int, reasons: dict[str, int], last_error: str | None) -> None:
        """One step's judge outcome: ``failed`` of ``sent`` responses fell back, for ``reasons``."""
        self.step += 1
        if sent == 0:
            return
        if failed <= self.max_failure_rate * sent:
            self.streak.clear()
            return
        self.streak.append((failed, sent))
        if len(self.streak) >= self.steps:
            counts = ", ".join(f"{f}/{s}" for f, s in self.streak[-self.steps :])
            raise JudgeOutage(
                f"{MARKER} training stopped at reward call {self.step}: more than "
                f"{self.max_failure_rate:.0%} of the judge calls fell back on {self.steps} consecutive steps "
                f"(fell back/sent: {counts}; last step's reasons {reasons}; last error: {last_error}). "
                "Fix the judge (URL, key, model, server), then run the same command again: it resumes from "
                "the last checkpoint (recipe keys judge_max_failure_rate, judge_guard_steps)."
            )
