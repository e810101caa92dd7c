"""Re-verify a converted output directory: counts, disjointness, files and images present."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.common.manifest import check_files, load_json
from tools.common.prompt import IMAGE_TOKEN
from tools.data.items import normalise
from tools.data.pathmmu import EVAL_SPLITS, split_names
from tools.data.writers import sharegpt_entry

ENTRY_KEYS = {"id", "image", "sha256", "question"}
Row = dict[str, Any]


def _check_rows(out: Path, kind: str, split: str, entries: list[Row], problems: list[str]) -> None:
    """The ``kind`` file of ``split`` matches the manifest entries one to one (count, ids, images) and its
    images exist."""
    images_of, id_of = ROW_FIELDS[kind]
    path = out / kind / (f"{split}.json" if kind == "llamafactory" else f"{split}.jsonl")
    rows = load_json(path, problems, lines=kind != "llamafactory")
    if rows is None:
        return
    if not isinstance(rows, list) or len(rows) != len(entries):
        got = f"{len(rows)} rows" if isinstance(rows, list) else f"a {type(rows).__name__}"
        problems.append(f"{path}: {got}, but the manifest lists {len(entries)} items")
        return
    for number, (row, entry) in enumerate(zip(rows, entries, strict=True), start=1):
        where = f"{path}: row {number} ({entry['id']})"
        try:
            images = images_of(row)
            row_id = id_of(row) if id_of else entry["id"]
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            problems.append(f"{where}: malformed row ({exc!r})")
            continue
        if row_id != entry["id"]:
            problems.append(f"{where}: has id {row_id!r}, the manifest expects {entry['id']!r} here")
        if len(images) != 1 or not Path(images[0]).as_posix().endswith("/" + entry["image"]):
            problems.append(f"{where}: images {images} do not match the manifest image {entry['image']!r}")
        elif not Path(images[0]).is_file():
            problems.append(f"{where}: image {images[0]} does not exist")


def _sharegpt_images(row: Row) -> list[str]:
    roles = [message["role"] for message in row["messages"]]
    if roles != ["user", "assistant"]:
        raise ValueError(f"roles {roles}, expected ['user', 'assistant']")
    tokens = row["messages"][0]["content"].count(IMAGE_TOKEN)
    if tokens != len(row["images"]):
        raise ValueError(f"{tokens} {IMAGE_TOKEN} tokens for {len(row['images'])} images")
    return row["images"]


# The output folder of each row format -> (the row's images, its id; None: LLaMA-Factory rows have none).
ROW_FIELDS: dict[str, tuple[Callable[[Row], list[str]], Callable[[Row], str] | None]] = {
    "llamafactory": (_sharegpt_images, None),
    "easyr1": (lambda r: r["images"], lambda r: json.loads(r["answer"])["id"]),
    "eval": (lambda r: [r["image"]], lambda r: r["id"]),
}


def _check_disjoint(
    where: Path, splits: dict[str, list[Row]], problems: list[str], by_question: bool = True
) -> None:
    """No image, image sha256 or (``by_question``: our image unit groups questions too) question shared."""
    criteria = [("image", lambda e: e["image"]), ("image sha256", lambda e: e["sha256"])]
    if by_question:
        criteria.append(("normalised question", lambda e: normalise(e["question"])))
    for label, key in criteria:
        owner: dict[str, str] = {}
        for split, entries in splits.items():
            for entry in entries:
                value = key(entry)
                if owner.setdefault(value, split) != split:
                    problems.append(
                        f"{where}: {entry['id']} in {split} shares its {label} {value!r} "
                        f"with the {owner[value]} split"
                    )


def _check_pathmmu(
    out: Path, manifest: dict[str, Any], splits: dict[str, list[Row]], problems: list[str]
) -> None:
    names = split_names("validation" in splits)
    if list(splits) != list(names):
        problems.append(f"{out / 'manifest.json'}: splits {list(splits)}, expected {list(names)}")
        return
    if manifest.get("split_unit", "image") == "image":
        # the authors' split is image-disjoint only: generic questions repeat across its splits
        by_question = manifest.get("split") != "authors-v2"
        _check_disjoint(out / "manifest.json", splits, problems, by_question)
    info_path = out / "llamafactory" / "dataset_info.json"
    info = load_json(info_path, problems) or {}
    for split in names:
        wanted = sharegpt_entry(split)
        if info_path.is_file() and info.get(f"pathmmu_{split}") != wanted:
            problems.append(
                f"{info_path}: entry pathmmu_{split} is {info.get(f'pathmmu_{split}')}, expected {wanted}"
            )
        _check_rows(out, "llamafactory", split, splits[split], problems)
    evaluated = [split for split in EVAL_SPLITS if split in splits]
    for split in ("rl", *evaluated):
        _check_rows(out, "easyr1", split, splits[split], problems)
    for split in evaluated:
        _check_rows(out, "eval", split, splits[split], problems)


def check_output(out: Path) -> list[str]:
    """Every problem found in ``out``, a ``pathvlm data pathmmu|omnimedvqa`` output; empty when fine."""
    out = Path(out)
    problems: list[str] = []
    manifest = load_json(out / "manifest.json", problems)
    if manifest is None:
        return problems
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    counts = manifest.get("counts") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict) or not all(
        isinstance(entries, list) and all(isinstance(e, dict) and ENTRY_KEYS <= e.keys() for e in entries)
        for entries in splits.values()
    ):
        return [f"{out / 'manifest.json'}: expected 'splits' {{name: [{{{', '.join(sorted(ENTRY_KEYS))}}}]}}"]
    problems += [
        f"{out / 'manifest.json'}: split or subset {name!r} is empty: an empty eval file evaluates nothing"
        for name, entries in splits.items()
        if not entries
    ]
    sizes = {name: len(entries) for name, entries in splits.items()}
    if counts != sizes:
        problems.append(f"{out / 'manifest.json'}: counts {counts} differ from the split lists {sizes}")
    omnimedvqa = manifest.get("dataset") == "omnimedvqa"  # its ids are unique per subset, PathMMU's overall
    for scope in splits.values() if omnimedvqa else [[e for es in splits.values() for e in es]]:
        repeated = sorted(i for i, n in Counter(e["id"] for e in scope).items() if n > 1)
        if repeated:
            problems.append(f"{out / 'manifest.json'}: ids listed more than once: {repeated[:5]}")
    if omnimedvqa:
        for slug, entries in splits.items():
            _check_rows(out, "eval", slug, entries, problems)
    else:
        _check_pathmmu(out, manifest, splits, problems)
    return check_files(out, manifest) + problems
