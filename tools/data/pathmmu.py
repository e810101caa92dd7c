"""PathMMU (``data.json`` + ``images/``) -> deduplicated sft/rl/[validation/]test splits in every format.

Selection: every item of the chosen subsets across PathMMU's splits (val, test, test_tiny), minus
duplicates (the same image + question + options repeated). The split is image-disjoint by default
(``--split-unit question``: the paper's question-level split) with exact sft/rl (and validation) sizes.
``--split authors-v2``: the authors' audited 2026 split (sft 3,000 / rl 1,000 / validation 385 / test 999),
found item by item from the membership keys in data/splits/authors-v2.json (tools/data/authors_split.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.common.manifest import file_hashes
from tools.data import authors_split
from tools.data.errors import DataError, ItemError, Rejects
from tools.data.images import hash_images
from tools.data.items import (
    Item,
    check_text,
    expect_shape,
    field,
    image_file,
    item_error,
    item_label,
    lettered_options,
    load_json,
    match_answer,
    normalise,
    text_field,
)
from tools.data.split import split_items
from tools.data.staging import staged_output
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
VAL_SPLITS = ("sft", "rl", "validation", "test")
EVAL_SPLITS = ("validation", "test")  # written in the EasyR1 and evaluation formats too
PAPER_TEST_SIZE = 1385  # 5,385 unique PubMed + EduContent items minus 3,000 + 1,000
SPLIT_KINDS = ("seeded", authors_split.SPLIT_NAME)


def split_names(validation: bool) -> tuple[str, ...]:
    """The splits of an output, with or without a validation split."""
    return VAL_SPLITS if validation else SPLITS


def _item(raw: Any, subset: str, split: str, index: int, path: Path, images: Path) -> Item:
    label = item_label(raw, "No", path, f"{subset}/{split}[{index}]")
    number = field(raw, "No", (int, str), path, label)
    img = text_field(raw, "img", path, label)
    question = text_field(raw, "question", path, label)
    options = lettered_options(field(raw, "options", (list,), path, label), path, label)
    answer, bare = match_answer(field(raw, "answer", (str,), path, label), options, path, label)
    explanation = raw.get("explanation")
    explanation = "" if explanation is None else explanation
    if not isinstance(explanation, str):
        raise ItemError(path, label, f"field 'explanation' must be str, got {type(explanation).__name__}")
    return Item(
        id=check_text(f"{subset}/{split}/{number}", "the id", path, label),
        subset=subset,
        image_ref=img,
        image=image_file(images, img, path, label, "images/"),
        question=question.strip(),
        options=options,
        answer=answer,
        explanation=check_text(explanation, "field 'explanation'", path, label),
        file=str(path),
        label=label,
        bare_letter=bare,
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
    val: int = 0,
    split_unit: str = "image",
    split: str = "seeded",
    split_keys: Path | None = None,
) -> dict[str, Any]:
    """Convert PathMMU under ``root`` into ``out`` (layout in data/README.md) all-or-nothing; returns the
    manifest. ``val`` > 0 adds a validation split of that size between rl and test. ``split`` authors-v2:
    the authors' split from ``split_keys`` (default data/splits/authors-v2.json); seed, sizes, val and
    split_unit do not apply."""
    if split not in SPLIT_KINDS:
        raise DataError(f"unknown --split {split!r}; expected one of {', '.join(SPLIT_KINDS)}")
    if target_style not in TARGET_STYLES:
        raise DataError(f"unknown target style {target_style!r}; expected one of {', '.join(TARGET_STYLES)}")
    if len(sizes) != len(SPLITS) - 1:
        raise DataError(f"expected {len(SPLITS) - 1} sizes (sft, rl), got {list(sizes)}")
    if val < 0:
        raise DataError(f"--val must be 0 (no validation split) or a positive size, got {val}")
    root, out = Path(root), Path(out)
    rejects = Rejects(skip_invalid)
    items, read, source_sha256 = read_items(root, subsets, rejects)
    items, duplicates = deduplicate(items, rejects)
    items = hash_images(items, rejects)
    no_explanation = sum(not item.explanation.strip() for item in items)
    bare = sum(item.bare_letter for item in items)
    print(
        f"PathMMU {'+'.join(subsets)}: read {read} items, dropped {duplicates} duplicates, "
        f"rejected {len(rejects.errors)} invalid, kept {len(items)}"
        f" ({bare} bare-letter answers resolved to their option)",
        file=sys.stderr,
    )
    recorded: dict[str, Any] = {"seed": seed, "split_unit": split_unit}
    try:
        if split == authors_split.SPLIT_NAME:
            splits, recorded = _authors_splits(
                items, Path(split_keys or authors_split.KEYS_FILE), skip_invalid
            )
        else:
            parts = split_items(items, (*sizes, val) if val else tuple(sizes), seed, split_unit)
            splits = dict(zip(split_names(val > 0), parts, strict=True))
    except DataError:
        rejects.write_beside(out)
        raise

    with staged_output(out) as staging:
        rejects.write(staging)
        write_llamafactory(staging, splits, target_style, prefix="pathmmu")
        for name in ("rl", *(n for n in EVAL_SPLITS if n in splits)):
            write_jsonl(staging / "easyr1" / f"{name}.jsonl", map(easyr1_row, splits[name]))
        for name in (n for n in EVAL_SPLITS if n in splits):
            write_jsonl(staging / "eval" / f"{name}.jsonl", map(eval_row, splits[name]))
        manifest = {
            "dataset": "pathmmu",
            **recorded,
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
                "bare_letter_answers": bare,
            },
            "files": file_hashes(staging),
            "splits": {name: [manifest_entry(item) for item in split] for name, split in splits.items()},
        }
        write_json(staging / "manifest.json", manifest)
    rejects.report(out)
    _report(manifest, out, sizes, val)
    return manifest


def _authors_splits(
    items: list[Item], keys_file: Path, skip_invalid: bool
) -> tuple[dict[str, list[Item]], dict[str, Any]]:
    """The authors' four splits from the key file, and what the manifest records about them; the
    image-disjointness audit must find no overlap."""
    keys, keys_sha256 = authors_split.load_keys(keys_file)
    splits, stats = authors_split.select_splits(items, keys, skip_invalid)
    counts = authors_split.audit(splits)
    print(authors_split.audit_line(counts), file=sys.stderr)
    if any(any(pairs.values()) for pairs in counts.values()):
        raise DataError(
            f"--split authors-v2: {authors_split.audit_line(counts)}; the authors' split has none"
        )
    print(
        f"--split authors-v2: {stats['excluded_items']} item(s) of your copy are in none of the authors' "
        "splits (their manifest removed 1 test item whose image duplicates an RL image)",
        file=sys.stderr,
    )
    recorded = {
        "split": authors_split.SPLIT_NAME,
        "split_keys": {"path": str(keys_file), "sha256": keys_sha256},
        "split_unit": "image",
        "seed": None,
        "audit": counts,
        "key_stats": stats,
    }
    return splits, recorded


def _report(manifest: dict[str, Any], out: Path, sizes: Sequence[int], val: int) -> None:
    counts = manifest["counts"]
    unit = "image-disjoint" if manifest["split_unit"] == "image" else "question-level, images may be shared"
    how = manifest.get("split") or f"seed {manifest['seed']}"
    print(
        f"\n  split ({how}, {unit}): "
        + " | ".join(f"{name} {count}" for name, count in counts.items())
        + f"\n  -> {out}\n",
        file=sys.stderr,
    )
    if "split" not in manifest and tuple(sizes) == SIZES and not val and counts["test"] != PAPER_TEST_SIZE:
        print(
            f"warning: the test split has {counts['test']} items, the paper's has {PAPER_TEST_SIZE} "
            f"({manifest['stats']['kept']} items kept; the paper's PubMed + EduContent give 5,385)",
            file=sys.stderr,
        )
    no_explanation, kept = manifest["stats"]["no_explanation"], manifest["stats"]["kept"]
    note = (
        ": their think_answer target has an empty <think></think>"
        if manifest["target_style"] == "think_answer" and no_explanation
        else ""
    )
    print(f"{no_explanation} of {kept} items have no explanation{note}", file=sys.stderr)
