"""Range rules for the numeric keys of an engine section: what each engine's validator adds to its schema's
type checks, so a nonsense value (learning rate -1 or inf, 0 epochs, batch 0, temperature -1) is refused
with the key and the allowed range named, before anything trains.

A rule set maps dotted key patterns (``fnmatch``: ``worker.*.optim.lr``) to a ``Range``; the first pattern
that matches a key applies. Values that are not numbers are left to the schema's type checks.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """``low`` (excluded when ``low_open``) <= value <= ``high``, finite; ``unset`` values also allowed
    (an engine's "not set" or "disabled", e.g. -1), ``integer`` when only whole numbers make sense."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False
    unset: tuple[float, ...] = ()
    note: str = ""

    def allows(self, value: float) -> bool:
        if value in self.unset:
            return True
        if not math.isfinite(value) or (self.integer and value != int(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            bounds.append(f"<= {_number(self.high)}")
        text = f"{kind} {' and '.join(bounds)}".rstrip()
        if self.unset:
            text += " or " + " or ".join(_number(v) for v in self.unset)
        return text + (f" ({self.note})" if self.note else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1)
COUNT = Range(1, integer=True)  # batch sizes, lengths, steps, workers: at least one
NON_NEGATIVE_INT = Range(0, integer=True)
# The smallest image a Qwen2.5-VL processor makes tokens of: one 28x28 patch (its own floor is 56x56).
PIXELS = Range(28 * 28, integer=True)


def leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of the nested mapping ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from leaves(value, f"{path}.{key}" if path else str(key))
    else:
        yield path, node


def numeric_leaves(node: Any) -> Iterator[tuple[str, float]]:
    """(dotted key, value) of every number in ``node`` (booleans are not numbers)."""
    return ((k, v) for k, v in leaves(node) if isinstance(v, int | float) and not isinstance(v, bool))


def rule_for(key: str, rules: Mapping[str, Range]) -> Range | None:
    return next((rule for pattern, rule in rules.items() if fnmatch.fnmatchcase(key, pattern)), None)


def check(
    section: Mapping[str, Any], rules: Mapping[str, Range], only: Mapping[str, Any] | None = None
) -> list[str]:
    """One problem per numeric key of ``section`` outside its rule's range: ``key: value, expected ...``;
    with ``only``, just the keys it sets (``section`` then being the engine's converted config)."""
    wanted = None if only is None else dict(leaves(only))
    return [
        f"{key}: {value!r}, expected {rule.describe()}"
        for key, value in numeric_leaves(section)
        if (wanted is None or key in wanted) and (rule := rule_for(key, rules)) and not rule.allows(value)
    ]


def ordered(section: Mapping[str, Any], low_key: str, high_key: str) -> list[str]:
    """``low_key`` <= ``high_key`` where both are numbers (e.g. min_pixels and max_pixels)."""
    values = dict(numeric_leaves(section))
    low, high = values.get(low_key), values.get(high_key)
    if low is None or high is None or low <= high:
        return []
    return [f"{high_key}: {high!r}, expected >= {low_key} ({low!r})"]
