"""What the judge grades, what it returns and what it counts."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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
    """Scores in [0, 1]; ``failure``: None for a judgement, else the fallback kind, "parse" or "transport"."""

    integrity: float
    knowledge: float
    failure: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def process(self) -> float:
        return (self.integrity + self.knowledge) / 2


@dataclass
class JudgeUsage:
    """Counters for one judge batch (summed: for the process). ``calls`` are HTTP attempts, ``retries`` the
    SDK's repeats among them; ``failures`` counts items per reason; ``parse_failed`` and ``transport_failed``
    split ``failed`` by fallback kind; ``cache_errors`` counts failed cache writes."""

    items: int = 0
    cache_hits: int = 0
    judged: int = 0
    failed: int = 0
    parse_failed: int = 0
    transport_failed: int = 0
    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    cache_errors: int = 0
    failures: Counter = field(default_factory=Counter)

    def add(self, other: JudgeUsage) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "failures": dict(self.failures)}
