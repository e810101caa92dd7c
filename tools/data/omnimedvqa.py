"""OmniMedVQA subsets -> out-of-domain evaluation JSONL, one file per subset (``eval/<slug>.jsonl``).

Options ``option_A``..``option_D`` (some absent) become lettered options ``A) ..`` in order (absent ones
skipped, the rest lettered consecutively); the answer is the option whose text equals ``gt_answer`` as the
accuracy reward compares texts (case, whitespace, trailing period). Written all-or-nothing: a re-conversion
replaces the whole output folder, so no eval file of an earlier subset list stays behind. Two subsets whose
slugs are equal (``Chest CT Scan``, ``Chest-CT-Scan``) are refused (they would share one file), and so is a
subset of which no item is left (``--skip-invalid``): nothing is written rather than an empty eval file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.common.manifest import file_hashes
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
    letter_texts,
    load_json,
    match_answer_text,
    slugify,
    text_field,
)
from tools.data.staging import staged_output
from tools.data.writers import eval_row, manifest_entry, write_json, write_jsonl

SUBSETS = ("Chest CT Scan", "ISIC2020", "Retinal OCT-C8", "Diabetic Retinopathy")
ACCESS_DIRS = ("Open-access", "Restricted-access")
OPTION_KEY = re.compile(r"^option_([A-Z])$")


def subset_file(root: Path, subset: str) -> Path:
    """``QA_information/{Open-access,Restricted-access}/<subset>.json`` under ``root``."""
    if not (root / "QA_information").is_dir():
        inner = (
            " (it has an inner OmniMedVQA/ folder: OmniMedVQA.zip unpacks into one; use that)"
            * (root / "OmniMedVQA" / "QA_information").is_dir()
        )
        raise DataError(
            f"{root / 'QA_information'} not found: --root must be the folder holding QA_information/ and "
            f"Images/, which is the inner OmniMedVQA/ folder that OmniMedVQA.zip unpacks into{inner}"
        )
    candidates = [root / "QA_information" / access / f"{subset}.json" for access in ACCESS_DIRS]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"OmniMedVQA subset {subset!r} not found: expected {' or '.join(map(str, candidates))}")


def _item(raw: Any, subset: str, index: int, path: Path, root: Path) -> Item:
    label = item_label(raw, "question_id", path, f"[{index}]")
    question_id = field(raw, "question_id", (str, int), path, label)
    question = text_field(raw, "question", path, label)
    gt_answer = field(raw, "gt_answer", (str,), path, label)
    image_path = text_field(raw, "image_path", path, label)
    texts = []
    for key in sorted(k for k in raw if OPTION_KEY.match(k)):
        if raw[key] is None or (isinstance(raw[key], str) and not raw[key].strip()):
            continue  # an absent option
        texts.append(field(raw, key, (str,), path, label).strip())
    options = letter_texts(texts, path, label)
    return Item(
        id=check_text(str(question_id), "field 'question_id'", path, label),
        subset=subset,
        image_ref=image_path,
        image=image_file(root, image_path, path, label, "the OmniMedVQA root"),
        question=question.strip(),
        options=options,
        answer=match_answer_text(gt_answer, options, path, label),
        file=str(path),
        label=label,
    )


def read_subset(root: Path, subset: str, rejects: Rejects) -> tuple[list[Item], int, str, str]:
    """Valid items of one subset, how many were read, the file (relative to root) and its sha256."""
    path = subset_file(root, subset)
    data, sha256 = load_json(path, f"OmniMedVQA's {subset}.json")
    expect_shape(data, list, path, "the top level", "a list of items")
    items, ids = [], {}
    for index, raw in enumerate(data):
        try:
            item = _item(raw, subset, index, path, root)
        except ItemError as exc:
            rejects.add(exc)
            continue
        if item.id in ids:
            rejects.add(item_error(item, f"duplicate question_id {item.id!r}: {ids[item.id]} has it too"))
            continue
        ids[item.id] = item.label
        items.append(item)
    return items, len(data), path.relative_to(root).as_posix(), sha256


def _check_slugs(subsets: Sequence[str]) -> None:
    """Each subset gets its own ``eval/<slug>.jsonl``: two names with one slug would overwrite one file."""
    owner: dict[str, str] = {}
    for subset in subsets:
        slug = slugify(subset)
        if slug in owner:
            raise DataError(
                f"OmniMedVQA subsets {owner[slug]!r} and {subset!r} would both be written to "
                f"eval/{slug}.jsonl: pass each subset once (--subsets)"
            )
        owner[slug] = subset


def convert_omnimedvqa(
    root: Path, out: Path, subsets: Sequence[str] = SUBSETS, skip_invalid: bool = False
) -> dict[str, Any]:
    """Write ``out/eval/<slug>.jsonl`` per subset and ``out/manifest.json``; returns the manifest."""
    root, out = Path(root), Path(out)
    _check_slugs(subsets)
    rejects = Rejects(skip_invalid)
    per_subset, read, sources = {}, {}, {}
    for subset in subsets:
        items, read[subset], name, sources[name] = read_subset(root, subset, rejects)
        per_subset[subset] = items
    hash_images([item for items in per_subset.values() for item in items], rejects)
    per_subset = {subset: [i for i in items if i.sha256] for subset, items in per_subset.items()}  # readable
    empty = [subset for subset, items in per_subset.items() if not items]
    if empty:
        rejects.write_beside(out)
        raise DataError(
            f"OmniMedVQA {', '.join(empty)}: every item was rejected ({sum(read[s] for s in empty)} read; "
            f"see {out.parent / f'{out.name}.{Rejects.FILE_NAME}'}), so no eval file is written for it and "
            f"{out} is left as it was: fix the data or leave the subset out (--subsets)"
        )

    with staged_output(out) as staging:
        rejects.write(staging)
        for subset, items in per_subset.items():
            write_jsonl(staging / "eval" / f"{slugify(subset)}.jsonl", map(eval_row, items))
        manifest = {
            "dataset": "omnimedvqa",
            "seed": None,
            "source_sha256": sources,
            "subsets": list(subsets),
            "counts": {slugify(subset): len(items) for subset, items in per_subset.items()},
            "stats": {"read": sum(read.values()), "rejected": len(rejects.errors)},
            "files": file_hashes(staging),
            "splits": {
                slugify(s): [manifest_entry(item) for item in items] for s, items in per_subset.items()
            },
        }
        write_json(staging / "manifest.json", manifest)
    rejects.report(out)
    for subset, items in per_subset.items():
        print(f"OmniMedVQA {subset}: read {read[subset]} items, kept {len(items)}", file=sys.stderr)
    return manifest
