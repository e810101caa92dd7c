"""Seeded split with exact sizes, image-disjoint by default.

Unit ``image`` (default): items sharing an image path, image content (sha256) or normalised question text
form one group, and a group never straddles two splits. Unit ``question`` (the paper's layout): every item
is its own unit, so items sharing an image may land in different splits.

The sizes are met exactly whenever any assignment of whole groups can meet them: groups are pooled by size,
and a memoised depth-first search over the pools (largest first) decides how many groups of each size every
sized split takes; the remainder is the last split (test). It tries the proportional share first, so each
split gets its share of multi-item groups. Within a pool, groups are ordered by
``sha256(f"{seed}:{first id}")`` (stable on every machine and Python version) and dealt out in that order.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator, Sequence

from tools.data.errors import DataError
from tools.data.items import Item, normalise

UNITS = ("image", "question")
Pools = list[tuple[int, int]]  # (group size, number of groups), largest size first


def group_items(items: Sequence[Item], unit: str = "image") -> list[list[int]]:
    """Indices of ``items`` grouped by ``unit``: the connected components of shared image path, image sha256
    or normalised question for ``image``, one item per group for ``question``."""
    if unit not in UNITS:
        raise DataError(f"unknown split unit {unit!r}; expected one of {', '.join(UNITS)}")
    if unit == "question" or not items:
        return [[index] for index in range(len(items))]
    from scipy.sparse import coo_matrix  # deferred: scipy loads in a second, only this split needs it
    from scipy.sparse.csgraph import connected_components

    owner: dict[tuple[str, str], int] = {}
    edges = [
        (owner.setdefault(key, index), index)
        for index, item in enumerate(items)
        for key in (
            ("path", str(item.image)),
            ("sha256", item.sha256),
            ("question", normalise(item.question)),
        )
    ]
    graph = coo_matrix(([1] * len(edges), tuple(zip(*edges, strict=True))), shape=(len(items), len(items)))
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(connected_components(graph, directed=False)[1]):
        groups.setdefault(int(label), []).append(index)
    return list(groups.values())


class _Allocator:
    """How many groups of each pool every sized split takes; the memo is shared by all targets."""

    def __init__(self, pools: Pools) -> None:
        self.pools = pools
        self.left_items = [sum(v * c for v, c in pools[j:]) for j in range(len(pools) + 1)]
        self.gcd = [math.gcd(*(v for v, _ in pools[j:])) for j in range(len(pools) + 1)]
        self.failed: set[tuple[int, tuple[int, ...]]] = set()

    def _candidates(self, j: int, left: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
        size, count = self.pools[j]
        after = self.left_items[j + 1]
        axes = []
        for need in left:
            low, high = max(0, -(-(need - after) // size)), min(count, need // size)
            share = count * need / self.left_items[j]
            axes.append(sorted(range(low, high + 1), key=lambda x, s=share: (abs(x - s), x)))
        for take in itertools.product(*axes):
            if sum(take) <= count and sum(left) - size * sum(take) <= after:
                yield take

    def solve(self, j: int, left: tuple[int, ...]) -> list[tuple[int, ...]] | None:
        """Takes per pool from ``j`` on that leave every split exactly full, or None."""
        if not any(left):
            return []
        if j == len(self.pools) or sum(left) > self.left_items[j] or any(n % self.gcd[j] for n in left):
            return None
        if (j, left) in self.failed:
            return None
        size = self.pools[j][0]
        for take in self._candidates(j, left):
            rest = self.solve(j + 1, tuple(n - size * t for n, t in zip(left, take, strict=True)))
            if rest is not None:
                return [take, *rest]
        self.failed.add((j, left))
        return None


def _around(target: Sequence[int], distance: int) -> Iterator[tuple[int, ...]]:
    """Integer vectors at L1 ``distance`` from ``target``."""
    if len(target) == 1:
        yield from {(target[0] - distance,), (target[0] + distance,)}
        return
    for step in range(-distance, distance + 1):
        for rest in _around(target[1:], distance - abs(step)):
            yield (target[0] + step, *rest)


def _nearest(
    allocator: _Allocator, sizes: Sequence[int], total: int, limit: int = 3
) -> list[tuple[int, ...]]:
    """Up to ``limit`` feasible size vectors nearest (L1) to ``sizes``, each leaving a test split."""
    for distance in range(1, total + 1):
        found = sorted(
            candidate
            for candidate in set(_around(sizes, distance))
            if min(candidate) >= 1 and sum(candidate) < total and allocator.solve(0, candidate) is not None
        )
        if found:
            return found[:limit]
    return []


def _describe(pools: Pools) -> str:
    return ", ".join(f"{c}×{v}" if c > 1 else str(v) for v, c in pools)


def split_items(
    items: Sequence[Item], sizes: Sequence[int], seed: int, unit: str = "image"
) -> list[list[Item]]:
    """``len(sizes) + 1`` disjoint splits: exact ``sizes`` then the remainder, each in source order."""
    total = len(items)
    if any(size < 1 for size in sizes):
        raise DataError(f"split sizes must be positive, got {list(sizes)}")
    if total <= sum(sizes):
        smaller = [max(1, total * size // (2 * sum(sizes))) for size in sizes]  # half of the items
        flags = f"--sizes {','.join(map(str, smaller[:2]))}"
        flags += f" --val {smaller[2]}" if len(sizes) > 2 else ""
        raise DataError(
            f"too few items: {total} kept, but sizes {'+'.join(map(str, sizes))} = {sum(sizes)} "
            f"leave none for the test split: pass smaller sizes, e.g. {flags}"
        )

    def order(group: list[int]) -> str:
        return hashlib.sha256(f"{seed}:{items[group[0]].id}".encode()).hexdigest()

    by_size: dict[int, list[list[int]]] = {}
    for group in sorted(group_items(items, unit), key=order):
        by_size.setdefault(len(group), []).append(group)
    pools = sorted(((size, len(groups)) for size, groups in by_size.items()), reverse=True)
    allocator = _Allocator(pools)
    takes = allocator.solve(0, tuple(sizes))
    if takes is None:
        groups = sum(c for _, c in pools)
        # Fewer groups than splits: no sizes can work, known without searching (5,385 items sharing one
        # question searched for 96 s).
        nearest = _nearest(allocator, sizes, total) if groups > len(sizes) else []
        hint = "; ".join(",".join(map(str, n)) for n in nearest) or (
            f"none, {len(sizes) + 1} splits need more than {groups} groups"
        )
        raise DataError(
            f"cannot make splits of exactly {','.join(map(str, sizes))} items (test the rest): {total} items "
            f"form {groups} groups that must stay together ({unit} unit; group sizes "
            f"{_describe(pools)}), and no assignment of whole groups meets these sizes; nearest feasible "
            f"--sizes: {hint}"
        )
    splits: list[list[int]] = [[] for _ in range(len(sizes) + 1)]
    for (size, _), take in itertools.zip_longest(pools, takes, fillvalue=(0,) * len(sizes)):
        groups = iter(by_size[size])
        for split, count in enumerate(take):
            for group in itertools.islice(groups, count):
                splits[split].extend(group)
        for group in groups:
            splits[-1].extend(group)
    return [[items[i] for i in sorted(split)] for split in splits]
