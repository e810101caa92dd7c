"""What the judge grades and what it returns."""

from __future__ import annotations

from dataclasses import dataclass

FAILURE_KINDS = ("parse", "transport")


@dataclass(frozen=True)
class JudgeItem:
    """One rollout to grade."""

    response: str
    question: str
    ground_truth: str
    image: str
    correct: bool
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgeResult:
    """Scores in [0, 1]; ``failure``: None for a real judgement, else the fallback's kind (FAILURE_KINDS)."""

    integrity: float
    knowledge: float
    failure: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def process(self) -> float:
        return (self.integrity + self.knowledge) / 2
