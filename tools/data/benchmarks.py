"""The authors' extra 2026 benchmarks -> evaluation JSONL, from the user's own Hugging Face parquet copies.

- ``pathvlm data pathvqa``: PathVQA's test split (``test-*.parquet`` with ``image`` {bytes, path},
  ``question``, ``answer``; 6,719 rows), its closed-ended (yes/no) questions only (3,362), as a choice between
  ``A) Yes`` and ``B) No`` in that fixed order: the authors' ``pathvqa_pathmmu_ab_v6_2048`` contract
  (``scripts/run_external_vqa_qwen.py``; yes/no by their ``normalize_short_answer``). Output
  ``eval/pathvqa_closed.jsonl``.
- ``pathvlm data mmmu``: MMMU's dev split (``<Subject>/dev-*.parquet``: ``id``, ``question``, ``options`` (a
  Python list literal), ``answer`` (a letter), ``question_type``, ``image_1``..``image_7``), the non-medical
  multiple-choice items (116): the authors' ``scripts/freeze_mmmu_nonmedical_dev_panel.py`` drops the five
  medical subjects and open questions. An item with several images gets them side by side in one image (our
  evaluation sends one image per item; the authors sent each). Output ``eval/mmmu_nonmedical_dev.jsonl``.

Images are written under ``images/`` by the sha256 of their bytes; each must decode. The output folder is
replaced all-or-nothing, with a ``manifest.json`` (counts, source files and their sha256).
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import string
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools.common.manifest import file_hashes, sha256_file
from tools.data.errors import DataError, ItemError, Rejects
from tools.data.items import Item, absolute, letter_texts
from tools.data.staging import staged_output
from tools.data.writers import eval_row, write_json, write_jsonl

PATHVQA_TEST_SIZE, PATHVQA_CLOSED_SIZE = 6719, 3362
YES_NO = ("A) Yes", "B) No")
MMMU_SIZE = 116
MEDICAL_SUBJECTS = (
    "Basic_Medical_Science",
    "Clinical_Medicine",
    "Diagnostics_and_Laboratory_Medicine",
    "Pharmacy",
    "Public_Health",
)


def short_answer(text: str) -> str:
    """The authors' ``normalize_short_answer``: NFKC, lower case, outer quotes/punctuation and spaces off."""
    text = unicodedata.normalize("NFKC", str(text)).strip().lower()
    text = re.sub(r"\s+", " ", text.strip(string.whitespace + "\"'`"))
    return text.strip(string.punctuation + " ")


def _parquet_rows(files: list[Path]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    for path in files:
        for index, row in enumerate(pq.read_table(path).to_pylist()):
            yield path, index, row


def _image(value: Any, path: Path, label: str) -> tuple[bytes, str]:
    """The bytes and suffix of a parquet image cell ``{bytes, path}``; they must decode."""
    from PIL import Image

    if not isinstance(value, dict) or not isinstance(value.get("bytes"), bytes):
        raise ItemError(path, label, "image cell is not {bytes, path} with bytes")
    try:
        with Image.open(io.BytesIO(value["bytes"])) as image:
            image.load()
    except Exception as exc:  # whatever PIL raises on bad bytes
        raise ItemError(path, label, f"image does not decode ({exc})") from None
    suffix = Path(value.get("path") or "x.png").suffix.lower() or ".png"
    return value["bytes"], suffix


def _side_by_side(images: list[bytes]) -> bytes:
    """One PNG with ``images`` left to right on white, tops aligned."""
    from PIL import Image

    opened = [Image.open(io.BytesIO(data)).convert("RGB") for data in images]
    canvas = Image.new("RGB", (sum(i.width for i in opened), max(i.height for i in opened)), "white")
    left = 0
    for image in opened:
        canvas.paste(image, (left, 0))
        left += image.width
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


class _ImageStore:
    """Images written into the staging folder, named by content, with their final absolute paths."""

    def __init__(self, staging: Path, out: Path) -> None:
        self.staging, self.final = staging / "images", absolute(out) / "images"
        self.staging.mkdir(parents=True)

    def add(self, data: bytes, suffix: str) -> tuple[Path, str]:
        digest = hashlib.sha256(data).hexdigest()
        (self.staging / f"{digest}{suffix}").write_bytes(data)
        return self.final / f"{digest}{suffix}", digest


def _files(root: Path, pattern: str, what: str) -> list[Path]:
    files = sorted(root.glob(pattern))
    if not files:
        raise DataError(f"{root}: no {pattern} found ({what}; see data/README.md)")
    return files


def _finish(staging: Path, out: Path, name: str, items: list[Item], manifest: dict[str, Any]) -> None:
    write_jsonl(staging / "eval" / f"{name}.jsonl", map(eval_row, items))
    write_json(staging / "manifest.json", {**manifest, "files": file_hashes(staging)})


def _warn_size(what: str, got: int, expected: int) -> None:
    if got != expected:
        print(f"warning: {what}: {got} items, the authors' has {expected}", file=sys.stderr)


def convert_pathvqa(root: Path, out: Path, skip_invalid: bool = False) -> dict[str, Any]:
    """PathVQA test parquet under ``root`` -> ``out/eval/pathvqa_closed.jsonl`` (yes/no as A/B)."""
    files = _files(Path(root), "**/test-*.parquet", "PathVQA's test split as Hugging Face parquet")
    rejects, items, read = Rejects(skip_invalid), [], 0
    with staged_output(out) as staging:
        store = _ImageStore(staging, out)
        for path, index, row in _parquet_rows(files):
            read += 1
            answer = short_answer(row.get("answer", ""))
            if answer not in ("yes", "no"):
                continue
            label = f"row {index}"
            try:
                question = row.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise ItemError(path, label, "no question text")
                image, digest = store.add(*_image(row.get("image"), path, label))
            except ItemError as exc:
                rejects.add(exc)
                continue
            option = YES_NO[0] if answer == "yes" else YES_NO[1]
            pathvqa_id = f"pathvqa/{path.stem}/{index}"
            item = Item(pathvqa_id, "PathVQA", image.name, image, question.strip(), list(YES_NO), option)
            item.sha256 = digest
            items.append(item)
        rejects.write(staging)
        manifest = {
            "dataset": "pathvqa",
            "contract": "closed-ended (yes/no) as A) Yes / B) No (authors' pathvqa_pathmmu_ab_v6_2048)",
            "counts": {"read": read, "closed": len(items), "rejected": len(rejects.errors)},
            "sources": {str(path): sha256_file(path) for path in files},
        }
        _finish(staging, out, "pathvqa_closed", items, manifest)
    rejects.report(out)
    _warn_size("PathVQA test", read, PATHVQA_TEST_SIZE)
    _warn_size("PathVQA closed-ended", len(items), PATHVQA_CLOSED_SIZE)
    print(f"PathVQA: {read} test rows, {len(items)} closed-ended -> {out}", file=sys.stderr)
    return manifest


def _mmmu_item(path: Path, row: dict[str, Any], store: _ImageStore) -> tuple[Item, int]:
    label = str(row.get("id", "?"))
    try:
        options = ast.literal_eval(row["options"]) if isinstance(row["options"], str) else row["options"]
    except (ValueError, SyntaxError, KeyError) as exc:
        raise ItemError(path, label, f"options are not a list literal ({exc})") from None
    if not isinstance(options, list) or not 2 <= len(options) <= 9:
        raise ItemError(path, label, f"expected 2 to 9 options, got {options!r}")
    lettered = letter_texts([str(option) for option in options], path, label)
    answer = str(row.get("answer", "")).strip().upper()
    if len(answer) != 1 or answer not in string.ascii_uppercase[: len(options)]:
        raise ItemError(path, label, f"answer {row.get('answer')!r} is not one of the option letters")
    cells = [row.get(f"image_{n}") for n in range(1, 8) if row.get(f"image_{n}") is not None]
    if not cells:
        raise ItemError(path, label, "no image")
    images = [_image(cell, path, label) for cell in cells]
    data, suffix = images[0] if len(images) == 1 else (_side_by_side([d for d, _ in images]), ".png")
    image, digest = store.add(data, suffix)
    question = str(row.get("question", "")).strip()
    answer = lettered[ord(answer) - 65]
    return Item(
        f"mmmu/{label}", path.parent.name, image.name, image, question, lettered, answer, sha256=digest
    ), len(images)


def convert_mmmu(root: Path, out: Path, skip_invalid: bool = False) -> dict[str, Any]:
    """MMMU dev parquet under ``root`` -> ``out/eval/mmmu_nonmedical_dev.jsonl`` (non-medical, choice)."""
    files = [
        path
        for path in _files(Path(root), "*/dev-*.parquet", "MMMU's <Subject>/dev-*.parquet from Hugging Face")
        if path.parent.name not in MEDICAL_SUBJECTS
    ]
    rejects, items, combined = Rejects(skip_invalid), [], 0
    with staged_output(out) as staging:
        store = _ImageStore(staging, out)
        for path, _, row in _parquet_rows(files):
            if row.get("question_type") != "multiple-choice":
                continue
            try:
                item, count = _mmmu_item(path, row, store)
            except ItemError as exc:
                rejects.add(exc)
                continue
            items.append(item)
            combined += count > 1
        rejects.write(staging)
        manifest = {
            "dataset": "mmmu",
            "selection": f"dev, multiple-choice, subjects other than {', '.join(MEDICAL_SUBJECTS)}",
            "counts": {"items": len(items), "images_side_by_side": combined, "rejected": len(rejects.errors)},
            "sources": {str(path): sha256_file(path) for path in files},
        }
        _finish(staging, out, "mmmu_nonmedical_dev", items, manifest)
    rejects.report(out)
    _warn_size("MMMU non-medical dev", len(items), MMMU_SIZE)
    print(
        f"MMMU: {len(items)} non-medical dev items ({combined} with images side by side) -> {out}",
        file=sys.stderr,
    )
    return manifest
