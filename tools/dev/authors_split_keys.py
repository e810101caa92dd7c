"""Derive data/splits/authors-v2.json, the membership keys of the authors' split, from their split files.

    python -m tools.dev.authors_split_keys <myr1>/data/pathmmu_image_disjoint_v2 \
        --out data/splits/authors-v2.json

Reads, per split, the first of ``SPLIT_FILES`` present in the folder (a JSON list of ``{image, problem,
solution}``), checks its size against the folder's ``manifest.json`` (``primary_splits.<split>.qa_count``),
that every item key is unique over all splits and that no image prefix is in two splits, and writes only keys
(image prefixes, item keys: ``tools.data.authors_split``), counts, the removed image (``manifest.json``
``removal``) and the split files' sha256: no PathMMU text (CC-BY-ND).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tools.common.manifest import sha256_file
from tools.data.authors_split import KEY_HEX, PREFIX_HEX, SPLITS, image_prefix, problem_key

SPLIT_FILES = {  # split -> candidate files, first present wins (with/without CoT share their problems)
    "sft": (
        "splits/sft_train_3000_without_cot.json",
        "splits/sft_train_3000_with_cot.json",
        "subsets/sft/sft_3000_without_cot.json",
        "subsets/sft/sft_3000_with_cot.json",
    ),
    "rl": ("splits/rl_train_1000_without_cot.json", "splits/rl_train_1000_with_cot.json"),
    "validation": ("splits/validation_385_without_cot.json", "splits/validation_385_with_cot.json"),
    "test": ("splits/test_0999_without_cot.json", "splits/test_0999_with_cot.json"),
}
SOURCE = "github:Freddie1946/myr1 data/pathmmu_image_disjoint_v2 (frozen 2026-07-19)"


def derive(folder: Path) -> dict[str, Any]:
    """The key file's content for the split files under ``folder``; duplicate keys are an error."""
    manifest_file = folder / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8")) if manifest_file.is_file() else {}
    primary = manifest.get("primary_splits", {})
    files, items, images = {}, {}, {}
    for split in SPLITS:
        path = next((folder / name for name in SPLIT_FILES[split] if (folder / name).is_file()), None)
        if path is None:
            raise SystemExit(
                f"error: {folder}: no {split} split file (looked for {', '.join(SPLIT_FILES[split])})"
            )
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise SystemExit(f"error: {path}: expected a JSON list of {{image, problem, solution}}")
        expected = primary.get(split, {}).get("qa_count")
        if expected is not None and len(rows) != expected:
            raise SystemExit(f"error: {path}: {len(rows)} items, its manifest.json says {expected}")
        try:
            items[split] = [problem_key(row["image"], row["problem"]) for row in rows]
            images[split] = sorted({image_prefix(row["image"]) for row in rows})
        except (KeyError, TypeError, ValueError) as exc:
            raise SystemExit(f"error: {path}: a row is not {{image, problem, solution}} ({exc!r})") from None
        files[split] = {"path": str(path.relative_to(folder)), "sha256": sha256_file(path)}
    duplicates = _duplicates(items, "item key") + _duplicates(images, "image prefix")
    if duplicates:
        raise SystemExit(f"error: {len(duplicates)} duplicate key(s), e.g. {'; '.join(duplicates[:3])}")
    removed = manifest.get("removal", {}).get("opaque_image_basename")
    return {
        "version": "pathmmu_image_disjoint_v2",
        "source": SOURCE,
        "key": f"images: image file name[:{PREFIX_HEX}]; items: sha256(json.dumps([image basename, "
        f"normalised question, [normalised 'X) option', ...]]))[:{KEY_HEX}] (tools/data/authors_split.py)",
        "counts": {split: len(keys) for split, keys in items.items()},
        "excluded_images": [image_prefix(removed)] if removed else [],
        "files": files,
        "images": images,
        "items": items,
    }


def _duplicates(keys: dict[str, list[str]], what: str) -> list[str]:
    """A key listed twice: within a split for item keys, across splits for both."""
    owner: dict[str, str] = {}
    found = []
    for split, listed in keys.items():
        for number, key in enumerate(listed, start=1):
            if key in owner:
                found.append(f"{split} {what} {number} repeats {owner[key]} ({key})")
            owner.setdefault(key, f"{split} {what} {number}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="the authors' data/pathmmu_image_disjoint_v2 folder")
    parser.add_argument("--out", type=Path, required=True, help="key file to write (JSON)")
    args = parser.parse_args(argv)
    data = derive(args.folder)
    temp = args.out.with_name(f".{args.out.name}.tmp")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(temp, args.out)
    counts = ", ".join(f"{split} {count}" for split, count in data["counts"].items())
    print(f"{args.out}: {counts} unique keys", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
