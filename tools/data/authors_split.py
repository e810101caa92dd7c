"""The authors' audited 2026 split (``--split authors-v2``) rebuilt from the user's own PathMMU copy.

The authors' ``data/pathmmu_image_disjoint_v2/`` (github:Freddie1946/myr1, frozen 2026-07-19) lists every item
of sft 3,000 / rl 1,000 / validation 385 / test 999 as ``{image, problem, solution}`` (``problem``: the
question, ``"\\nOptions:\\n"``, one ``X) text`` per line). PathMMU is CC-BY-ND, so the repository ships only a
membership key per item (``data/splits/authors-v2.json``, derived by ``tools/dev/authors_split_keys.py``):

    key = sha256(json.dumps([image basename, normalised question, [normalised "X) option", ...]]))[:16]

``select_splits`` finds each key among the user's items; a key found nowhere or more than once is an error
(``--skip-invalid``: reported and left out). ``audit`` counts the pairwise overlaps by image basename and by
sha256 of the image bytes, as the authors' ``validation_report.json`` does (all zero on a faithful copy).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.common.paths import REPO_ROOT
from tools.data.errors import DataError
from tools.data.items import OPTION_RE, Item, normalise, sha256_file

SPLIT_NAME = "authors-v2"
KEYS_FILE = REPO_ROOT / "data" / "splits" / "authors-v2.json"
SPLITS = ("sft", "rl", "validation", "test")
OPTIONS_MARK = "\nOptions:\n"
KEY_HEX = 16


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


def load_keys(path: Path) -> tuple[dict[str, list[str]], str]:
    """The key file's ``{split: [key, ...]}`` and the file's sha256."""
    if not path.is_file():
        raise DataError(
            f"{path} not found: derive the authors' membership keys with `python -m "
            "tools.dev.authors_split_keys <myr1>/data/pathmmu_image_disjoint_v2 --out "
            "data/splits/authors-v2.json` (see data/README.md)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        splits = {name: list(data["splits"][name]) for name in SPLITS}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a split key file with splits {', '.join(SPLITS)} ({exc!r})") from None
    return splits, sha256_file(path)


def _examples(problems: list[str]) -> str:
    return "; ".join(problems[:3]) + (f"; ... ({len(problems) - 3} more)" if len(problems) > 3 else "")


def select_splits(
    items: Sequence[Item], keys: Mapping[str, list[str]], skip_invalid: bool = False
) -> tuple[dict[str, list[Item]], dict[str, Any]]:
    """The items of every split in the key file's order, and the counts of missing, ambiguous and unused.

    A key matching no item or several items raises (``skip_invalid``: left out, counted and printed)."""
    by_key: dict[str, list[Item]] = {}
    for item in items:
        by_key.setdefault(item_key(item.image_ref, item.question, item.options), []).append(item)
    splits: dict[str, list[Item]] = {}
    missing: list[str] = []
    ambiguous: list[str] = []
    for name in SPLITS:
        splits[name] = []
        for number, key in enumerate(keys[name], start=1):
            found = by_key.get(key, [])
            if len(found) == 1:
                splits[name].append(found[0])
            elif not found:
                missing.append(f"{name} item {number} (key {key})")
            else:
                ids = ", ".join(item.id for item in found)
                ambiguous.append(f"{name} item {number} (key {key}) matches {len(found)} items: {ids}")
    used = {key for key in itertools.chain.from_iterable(keys.values())}
    stats = {
        "missing_keys": len(missing),
        "ambiguous_keys": len(ambiguous),
        "unused_items": sum(len(found) for key, found in by_key.items() if key not in used),
    }
    problems = []
    if missing:
        problems.append(f"{len(missing)} key(s) not found in your PathMMU copy, e.g. {_examples(missing)}")
    if ambiguous:
        problems.append(f"{len(ambiguous)} key(s) found more than once, e.g. {_examples(ambiguous)}")
    if problems and not skip_invalid:
        raise DataError(
            f"--split {SPLIT_NAME}: " + "; ".join(problems) + " (is this the authors' PathMMU release? "
            "--skip-invalid leaves these items out and goes on)"
        )
    for problem in problems:
        print(f"warning: --split {SPLIT_NAME}: {problem}; left out", flush=True)
    return splits, stats


def audit(splits: Mapping[str, Sequence[Item]]) -> dict[str, dict[str, int]]:
    """Items of each split pair sharing an image basename / image bytes (sha256), as in the authors'
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
