"""The authors' audited 2026 split (``--split authors-v2``) rebuilt from the user's own PathMMU copy.

The authors' ``data/pathmmu_image_disjoint_v2/`` (github:Freddie1946/myr1, frozen 2026-07-19) lists every item
of sft 3,000 / rl 1,000 / validation 385 / test 999 as ``{image, problem, solution}`` (``problem``: the
question, ``"\\nOptions:\\n"``, one ``X) text`` per line). Their split is image-disjoint (every question on an
image is in that image's split) and covers all 5,385 PubMed + EduContent items but one test item (removed: its
image is a byte copy of an RL image). PathMMU is CC-BY-ND, so the repository ships only membership keys
(``data/splits/authors-v2.json``, derived from their split files as data/README.md says):

- ``images``: per split, the first ``PREFIX_HEX`` characters of each image file name (PathMMU names images by
  a 64-hex content hash); a split without a list (sft) is every other item; ``excluded_images``: the removed
  one;
- ``counts``: the items per split, checked after the assignment;
- ``items`` (optional, when derived from the full split files): per split, one key per item,
  ``sha256(json.dumps([image basename, normalised question, [normalised "X) option", ...]]))[:16]``, checked
  one by one (a key found nowhere or more than once is reported) and giving the authors' item order.

A listed image found nowhere or matching several files, a count that differs, or an item key missing or found
twice is an error naming how many and examples (``--skip-invalid``: reported, and the items are left out).
``audit`` counts the pairwise overlaps by image basename and by sha256 of the image bytes, as the authors'
``validation_report.json`` does (all zero on a faithful copy).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.common.manifest import sha256_file
from tools.common.paths import REPO_ROOT
from tools.data.errors import DataError
from tools.data.items import OPTION_RE, Item, normalise

SPLIT_NAME = "authors-v2"
KEYS_FILE = REPO_ROOT / "data" / "splits" / "authors-v2.json"
SPLITS = ("sft", "rl", "validation", "test")
OPTIONS_MARK = "\nOptions:\n"
KEY_HEX = 16
PREFIX_HEX = 12


def _option(text: str) -> str:
    match = OPTION_RE.match(text)
    return normalise(f"{match.group(1)}) {match.group(2)}" if match else text)


def item_key(image: str, question: str, options: Sequence[str]) -> str:
    """The membership key of one item: its image basename, question and options, normalised and hashed."""
    parts = [Path(image).name, normalise(question), [_option(option) for option in options]]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:KEY_HEX]


def problem_key(image: str, problem: str) -> str:
    """``item_key`` of an authors' split row (``problem``: question, ``"\\nOptions:\\n"``, option lines)."""
    question, mark, options = problem.partition(OPTIONS_MARK)
    if not mark:
        raise ValueError(f"problem {problem[:60]!r}... has no {OPTIONS_MARK!r} line")
    return item_key(image, question, [line for line in options.splitlines() if line.strip()])


def image_prefix(image: str) -> str:
    """The image key: the start of the image's file name (a content hash in PathMMU)."""
    return Path(image).name[:PREFIX_HEX].lower()


@dataclass
class Keys:
    """A key file: image prefixes per split (one split may be the rest), counts, optional item keys."""

    images: dict[str, set[str]]
    counts: dict[str, int]
    excluded: set[str]
    items: dict[str, list[str]] = field(default_factory=dict)

    @property
    def rest(self) -> str | None:
        """The split that takes every item not listed elsewhere (sft), if any."""
        return next((name for name in SPLITS if name not in self.images), None)


def load_keys(path: Path) -> tuple[Keys, str]:
    """The key file and its sha256."""
    if not path.is_file():
        raise DataError(
            f"{path} not found: pass --split-keys the authors' membership key file (shipped as "
            "data/splits/authors-v2.json; data/README.md says how to derive it from their split files)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = Keys(
            images={name: set(prefixes) for name, prefixes in data["images"].items()},
            counts={name: int(data["counts"][name]) for name in SPLITS},
            excluded=set(data.get("excluded_images", [])),
            items={name: list(keys) for name, keys in (data.get("items") or {}).items()},
        )
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{path}: not a split key file (images, counts per split; {exc!r})") from None
    unknown = set(keys.images) - set(SPLITS)
    if unknown or len(SPLITS) - len(keys.images) > 1:
        raise DataError(
            f"{path}: images must list every split of {SPLITS} but at most one (got {sorted(keys.images)})"
        )
    return keys, sha256_file(path)


def _counted(found: list[str], what: str) -> list[str]:
    """One problem line: how many ``what``, with up to three examples; none when nothing was found."""
    more = f"; ... ({len(found) - 3} more)" if len(found) > 3 else ""
    return [f"{len(found)} {what}, e.g. {'; '.join(found[:3])}{more}"] if found else []


def _image_problems(items: Sequence[Item], keys: Keys) -> list[str]:
    """Listed image prefixes that match no image file, or several."""
    files: dict[str, set[str]] = {}
    for item in items:
        files.setdefault(image_prefix(item.image_ref), set()).add(item.image_ref)
    missing, ambiguous = [], []
    for name, prefixes in keys.images.items():
        for prefix in sorted(prefixes):
            found = files.get(prefix, set())
            if not found:
                missing.append(f"{name} image {prefix}…")
            elif len(found) > 1:
                ambiguous.append(f"{name} image {prefix}… matches {', '.join(sorted(found))}")
    problems = _counted(missing, "listed image(s) not found in your PathMMU copy")
    return problems + _counted(ambiguous, "listed image(s) found more than once")


def _item_problems(splits: dict[str, list[Item]], keys: Keys) -> tuple[list[str], set[int]]:
    """Per-item checks where the key file has item keys: keys not found or found twice in their split;
    the ids of items to leave out (duplicates and items no key names). Puts items in the key file's order."""
    missing, ambiguous, extra, drop = [], [], [], set()
    for name, listed in keys.items.items():
        by_key: dict[str, list[Item]] = {}
        for item in splits[name]:
            by_key.setdefault(item_key(item.image_ref, item.question, item.options), []).append(item)
        ordered = []
        for number, key in enumerate(listed, start=1):
            found = by_key.pop(key, [])
            if not found:
                missing.append(f"{name} item {number} (key {key})")
            elif len(found) > 1:
                ambiguous.append(f"{name} item {number} (key {key}) matches {', '.join(i.id for i in found)}")
                drop.update(id(item) for item in found)
            else:
                ordered.append(found[0])
        for found in by_key.values():
            extra.extend(f"{name}: {item.id}" for item in found)
            drop.update(id(item) for item in found)
        splits[name] = ordered + [item for rest in by_key.values() for item in rest]
    problems = _counted(missing, "key(s) not found in your PathMMU copy")
    problems += _counted(ambiguous, "key(s) found more than once")
    problems += _counted(extra, "item(s) on the split's images that no key names")
    return problems, drop


def select_splits(
    items: Sequence[Item], keys: Keys, skip_invalid: bool = False
) -> tuple[dict[str, list[Item]], dict[str, Any]]:
    """The items of every split (in the key file's order where it has item keys, else in source order) and
    the counts of problems and of items in no split; problems raise, or (``skip_invalid``) are printed."""
    owner = {prefix: name for name, prefixes in keys.images.items() for prefix in prefixes}
    splits: dict[str, list[Item]] = {name: [] for name in SPLITS}
    excluded = 0
    for item in items:
        prefix = image_prefix(item.image_ref)
        name = owner.get(prefix) or (None if prefix in keys.excluded else keys.rest)
        if name is None:
            excluded += 1
        else:
            splits[name].append(item)
    problems = _image_problems(items, keys)
    item_problems, drop = _item_problems(splits, keys)
    problems += item_problems
    splits = {name: [item for item in split if id(item) not in drop] for name, split in splits.items()}
    wrong = [
        f"{name} {len(splits[name])} (theirs {keys.counts[name]})"
        for name in SPLITS
        if len(splits[name]) != keys.counts[name]
    ]
    if wrong:
        problems.append(f"split sizes differ: {', '.join(wrong)}")
    stats = {"problems": len(problems), "left_out": len(drop), "excluded_items": excluded}
    if problems and not skip_invalid:
        raise DataError(
            f"--split {SPLIT_NAME}: " + "; ".join(problems) + " (is this the authors' PathMMU release? "
            "--skip-invalid leaves the items in question out and goes on)"
        )
    for problem in problems:
        print(f"warning: --split {SPLIT_NAME}: {problem}", flush=True)
    return splits, stats


def audit(splits: Mapping[str, Sequence[Item]]) -> dict[str, dict[str, int]]:
    """Images shared by each split pair, by basename and by sha256 of the bytes, as the authors'
    ``validation_report.json`` (``basename_overlap_counts``, ``exact_content_overlap_counts``)."""
    result: dict[str, dict[str, int]] = {"basename_overlap_counts": {}, "exact_content_overlap_counts": {}}
    for a, b in itertools.combinations(splits, 2):
        for label, key in (
            ("basename_overlap_counts", lambda item: Path(item.image_ref).name),
            ("exact_content_overlap_counts", lambda item: item.sha256),
        ):
            shared = {key(item) for item in splits[a]} & {key(item) for item in splits[b]}
            result[label][f"{a}__{b}"] = len(shared)
    return result


def audit_line(counts: Mapping[str, Mapping[str, int]]) -> str:
    """One line: the overlaps by basename and by content, or that there are none."""
    overlaps = [
        f"{pair} {count} ({'basename' if label.startswith('basename') else 'sha256'})"
        for label, pairs in counts.items()
        for pair, count in pairs.items()
        if count
    ]
    return "image-disjointness audit (basename and sha256 of the bytes, 6 split pairs): " + (
        "overlaps " + ", ".join(overlaps) if overlaps else "no overlap"
    )
