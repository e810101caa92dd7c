"""Seeded, image-disjoint split with exact sizes.

Items sharing an image path, image content (sha256) or normalised question text form one group, and a
group never straddles two splits. Groups are ordered by ``sha256(f"{seed}:{first id}")`` (stable on
every machine and Python version), then each sized split takes groups in that order whenever the
remaining size can still be reached exactly by the groups after it (a subset-sum check on bitsets).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from tools.data.errors import DataError
from tools.data.items import Item, normalise


def group_items(items: Sequence[Item]) -> list[list[int]]:
    """Indices of ``items`` grouped by shared image path, image sha256 or normalised question (union-find)."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        for key in (
            ("path", str(item.image)),
            ("sha256", item.sha256),
            ("question", normalise(item.question)),
        ):
            if key in owner:
                a, b = find(owner[key]), find(index)
                parent[max(a, b)] = min(a, b)
            else:
                owner[key] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(items)):
        groups.setdefault(find(index), []).append(index)
    return list(groups.values())


def _pick(sizes: Sequence[int], target: int) -> list[int] | None:
    """Positions whose sizes sum to ``target``, preferring earlier ones; None when impossible."""
    mask = (1 << (target + 1)) - 1
    reach = [0] * (len(sizes) + 1)  # reach[i]: bit s set when groups i.. can sum to s
    reach[-1] = 1
    for i in range(len(sizes) - 1, -1, -1):
        reach[i] = (reach[i + 1] | (reach[i + 1] << sizes[i])) & mask
    if not reach[0] >> target & 1:
        return None
    chosen, left = [], target
    for i, size in enumerate(sizes):
        if size <= left and reach[i + 1] >> (left - size) & 1:
            chosen.append(i)
            left -= size
    return chosen


def split_items(items: Sequence[Item], sizes: Sequence[int], seed: int) -> list[list[Item]]:
    """``len(sizes) + 1`` disjoint splits: exact ``sizes`` then the remainder, each in source order."""
    total = len(items)
    if any(size < 1 for size in sizes):
        raise DataError(f"split sizes must be positive, got {list(sizes)}")
    if total <= sum(sizes):
        raise DataError(
            f"too few items: {total} kept, but sizes {'+'.join(map(str, sizes))} = {sum(sizes)} "
            "leave none for the test split"
        )

    def order(group: list[int]) -> str:
        return hashlib.sha256(f"{seed}:{items[group[0]].id}".encode()).hexdigest()

    groups = sorted(group_items(items), key=order)
    splits = []
    for size in sizes:
        chosen = _pick([len(g) for g in groups], size)
        if chosen is None:
            largest = sorted(groups, key=len, reverse=True)[:3]
            described = "; ".join(f"{len(g)} items incl. {items[g[0]].id}" for g in largest)
            raise DataError(
                f"cannot make a split of exactly {size} items: {total} items form {len(groups)} groups that "
                f"share an image or question and must stay together (largest: {described}), and no set of "
                f"the remaining groups sums to {size}; choose other --sizes"
            )
        taken = set(chosen)
        splits.append(sorted(i for pos in chosen for i in groups[pos]))
        groups = [g for pos, g in enumerate(groups) if pos not in taken]
    splits.append(sorted(i for g in groups for i in g))
    return [[items[i] for i in split] for split in splits]
