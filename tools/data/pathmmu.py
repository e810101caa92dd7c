"""PathMMU (``data.json`` + ``images/``) -> deduplicated, image-disjoint sft/rl/test splits in every format.

Selection: every item of the chosen subsets across PathMMU's splits (val, test, test_tiny), minus
duplicates (test_tiny repeats test; the same image + question + options may repeat across splits).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.data.errors import DataError, ItemError, Rejects
from tools.data.images import hash_images
from tools.data.items import Item, absolute, item_error, lettered_options, match_answer, normalise
from tools.data.sources import expect_shape, field, load_json
from tools.data.split import split_items
from tools.data.writers import (
    TARGET_STYLES,
    easyr1_row,
    eval_row,
    manifest_entry,
    write_json,
    write_jsonl,
    write_llamafactory,
)

SUBSETS = ("PubMed", "EduContent")
SIZES = (3000, 1000)
SPLITS = ("sft", "rl", "test")


def _item(raw: Any, subset: str, split: str, index: int, path: Path, images: Path) -> Item:
    label = f"{subset}/{split}[{index}]"
    if not isinstance(raw, dict):
        raise ItemError(path, label, f"expected an object, got {type(raw).__name__}")
    if "No" in raw:
        label += f" (No={raw['No']!r})"
    number = field(raw, "No", (int, str), path, label)
    img = field(raw, "img", (str,), path, label)
    question = field(raw, "question", (str,), path, label)
    options = lettered_options(field(raw, "options", (list,), path, label), path, label)
    answer = match_answer(field(raw, "answer", (str,), path, label), options, path, label)
    explanation = raw.get("explanation")
    explanation = "" if explanation is None else explanation
    if not isinstance(explanation, str):
        raise ItemError(path, label, f"field 'explanation' must be str, got {type(explanation).__name__}")
    return Item(
        id=f"{subset}/{split}/{number}",
        subset=subset,
        image_ref=img,
        image=absolute(images / img),
        question=question.strip(),
        options=options,
        answer=answer,
        explanation=explanation,
        file=str(path),
        label=label,
    )


def read_items(root: Path, subsets: Sequence[str], rejects: Rejects) -> tuple[list[Item], int, str]:
    """Valid items of ``subsets`` in file order, how many were read, and the sha256 of data.json."""
    path = root / "data.json"
    data, sha256 = load_json(path, "PathMMU's data.json")
    expect_shape(data, dict, path, "the top level", "an object {subset: {split: [items]}}")
    images = root / "images"
    if not images.is_dir():
        raise DataError(
            f"{images} not found: unzip PathMMU's images.zip beside data.json (see data/README.md)"
        )
    items, read = [], 0
    for subset in subsets:
        if subset not in data:
            raise DataError(f"{path}: subset {subset!r} not found (it has {', '.join(data)})")
        expect_shape(data[subset], dict, path, f"data[{subset!r}]", "an object {split: [items]}")
        for split, raws in data[subset].items():
            expect_shape(raws, list, path, f"data[{subset!r}][{split!r}]", "a list of items")
            for index, raw in enumerate(raws):
                read += 1
                try:
                    items.append(_item(raw, subset, split, index, path, images))
                except ItemError as exc:
                    rejects.add(exc)
    return items, read, sha256


def deduplicate(items: list[Item], rejects: Rejects) -> tuple[list[Item], int]:
    """Drop repeats of the same image + question + options (first kept); repeats with another answer or
    a reused id are item errors."""
    first: dict[tuple[Any, ...], Item] = {}
    ids: dict[str, Item] = {}
    kept, duplicates = [], 0
    for item in items:
        key = (str(item.image), normalise(item.question), tuple(normalise(o) for o in item.options))
        if key in first:
            if first[key].answer != item.answer:
                problem = (
                    f"repeats {first[key].id} but answers {item.answer!r} instead of {first[key].answer!r}"
                )
                rejects.add(item_error(item, problem))
            else:
                duplicates += 1
            continue
        if item.id in ids:
            rejects.add(item_error(item, f"duplicate id {item.id!r}: {ids[item.id].label} has the same No"))
            continue
        first[key] = ids[item.id] = item
        kept.append(item)
    return kept, duplicates


def convert_pathmmu(
    root: Path,
    out: Path,
    seed: int = 42,
    sizes: Sequence[int] = SIZES,
    subsets: Sequence[str] = SUBSETS,
    target_style: str = "think_answer",
    skip_invalid: bool = False,
) -> dict[str, Any]:
    """Convert PathMMU under ``root`` into ``out`` (layout in data/README.md); returns the manifest."""
    if target_style not in TARGET_STYLES:
        raise DataError(f"unknown target style {target_style!r}; expected one of {', '.join(TARGET_STYLES)}")
    if len(sizes) != len(SPLITS) - 1:
        raise DataError(f"expected {len(SPLITS) - 1} sizes (sft, rl), got {list(sizes)}")
    root, out = Path(root), Path(out)
    rejects = Rejects(skip_invalid)
    items, read, source_sha256 = read_items(root, subsets, rejects)
    items, duplicates = deduplicate(items, rejects)
    items = hash_images(items, rejects)
    no_explanation = sum(not item.explanation.strip() for item in items)
    print(
        f"PathMMU {'+'.join(subsets)}: read {read} items, dropped {duplicates} duplicates, "
        f"rejected {len(rejects.errors)} invalid, kept {len(items)}",
        file=sys.stderr,
    )
    splits = dict(zip(SPLITS, split_items(items, sizes, seed), strict=True))

    out.mkdir(parents=True, exist_ok=True)
    rejects.write(out)
    write_llamafactory(out, splits, target_style, prefix="pathmmu")
    for name in ("rl", "test"):
        write_jsonl(out / "easyr1" / f"{name}.jsonl", map(easyr1_row, splits[name]))
    write_jsonl(out / "eval" / "test.jsonl", map(eval_row, splits["test"]))
    manifest = {
        "dataset": "pathmmu",
        "seed": seed,
        "source_sha256": source_sha256,
        "subsets": list(subsets),
        "target_style": target_style,
        "counts": {name: len(split) for name, split in splits.items()},
        "stats": {
            "read": read,
            "duplicates": duplicates,
            "rejected": len(rejects.errors),
            "kept": len(items),
            "no_explanation": no_explanation,
        },
        "splits": {name: [manifest_entry(item) for item in split] for name, split in splits.items()},
    }
    write_json(out / "manifest.json", manifest)
    counts = ", ".join(f"{name} {count}" for name, count in manifest["counts"].items())
    print(f"split (seed {seed}): {counts} -> {out}", file=sys.stderr)
    note = (
        ": their think_answer target has an empty <think></think>" if target_style == "think_answer" else ""
    )
    print(
        f"{no_explanation} of {len(items)} items have no explanation{note if no_explanation else ''}",
        file=sys.stderr,
    )
    return manifest
