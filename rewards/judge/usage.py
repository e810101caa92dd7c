"""Counters for one judge batch (and, summed, for the process)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JudgeUsage:
    """``calls`` are HTTP attempts; ``failures`` counts items per reason; ``parse_failed`` and
    ``transport_failed`` split ``failed`` by fallback kind; ``cache_errors`` counts failed cache writes."""

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
