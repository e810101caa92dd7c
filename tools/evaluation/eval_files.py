"""The files of evaluation: an eval data file's rows (``load_items``) and, per evaluation folder, its
identity, the record schema, validated reading, the lock.

An evaluation folder ``.../eval/<dataset>/`` holds ``config.json`` (written first, before any item), the
``items.jsonl`` records and, once every item is answered, ``summary.json``. The folder's identity is the
model (path or name, and ``model_sha256``), the backend, the data file's sha256 and the decoding settings
(``IDENTITY_KEYS``); ``pathvlm eval`` refuses to resume into a folder of another identity and
``pathvlm report`` refuses a folder whose summary, config and items disagree.

``model_sha256`` of a model directory hashes every file's relative path and size, the whole of each file
up to 16 MiB and the first and last MiB of larger ones (weights: their safetensors header and tail), so
it costs seconds even for 32B; a model given by name (hub id, API model) is hashed as its name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tools.common.errors import UserError

IDENTITY_KEYS = (
    "model",
    "model_sha256",
    "backend",
    "data_sha256",
    "max_new_tokens",
    "temperature",
    "samples",  # pass@k folders only (absent: greedy, one answer per item)
    "seed",
    "max_pixels",
    "min_pixels",
    "dtype",
)
RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "subset": (str,),
    "prompt_sha256": (str,),
    "output": (str,),
    "parsed_letter": (str, type(None)),
    "parsed_text": (str, type(None)),
    "correct": (bool,),
    "letter_correct": (bool,),
    "output_tokens": (int,),
    "format_ok": (bool,),
}
SAMPLE_TYPES: dict[str, type] = {"sample_outputs": str, "sample_correct": bool, "sample_output_tokens": int}
ITEM_KEYS = ("id", "subset", "image", "question", "options", "answer")  # a row of an eval data file
CONFIG_FILE, ITEMS_FILE, SUMMARY_FILE, LOCK_FILE = "config.json", "items.jsonl", "summary.json", "eval.lock"
_WHOLE_FILE_LIMIT = 16 << 20
_EDGE = 1 << 20


class EvalFileError(UserError, ValueError):
    """An evaluation file that cannot be trusted; the message names the file (and line)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_items(path: Path) -> list[dict[str, Any]]:
    """The rows ``{id, subset, image, question, options, answer}`` of an eval data file; ids are unique."""
    items, seen = [], set()
    for line_no, item in jsonl_objects(path):
        missing = [key for key in ITEM_KEYS if key not in item]
        if missing:
            raise EvalFileError(
                f"{path}:{line_no}: eval item lacks {missing}; expected keys {list(ITEM_KEYS)}"
            )
        item["id"] = str(item["id"])
        if item["id"] in seen:
            raise EvalFileError(f"{path}:{line_no}: duplicate id {item['id']!r}")
        seen.add(item["id"])
        items.append(item)
    if not items:
        raise EvalFileError(f"{path}: no eval items (convert the data again: pathvlm data)")
    return items


def item_image(item: dict[str, Any], data: Path) -> str:
    """An item's image path; a relative one found beside the data file is taken from there."""
    image = Path(item["image"])
    return str(data.parent / image if not image.is_absolute() and (data.parent / image).exists() else image)


def model_sha256(model: str) -> str:
    """Content hash of a model directory (see the module doc), else of the model's name."""
    digest = hashlib.sha256()
    path = Path(model)
    if not path.is_dir():
        digest.update(f"name:{model}".encode())
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
        with file.open("rb") as handle:
            if size <= _WHOLE_FILE_LIMIT:
                digest.update(handle.read())
            else:
                digest.update(handle.read(_EDGE))
                handle.seek(size - _EDGE)
                digest.update(handle.read(_EDGE))
    return digest.hexdigest()


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The identity part of a config or summary (absent keys read as ``None``)."""
    return {key: config.get(key) for key in IDENTITY_KEYS}


def identity_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (before, after)}`` of the identity keys whose values differ."""
    old, new = identity(before), identity(after)
    return {key: (old[key], new[key]) for key in IDENTITY_KEYS if old[key] != new[key]}


def ids_sha256(ids: Iterable[str]) -> str:
    """Order-free hash of the item ids a summary covers."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


def validate_record(record: Any, where: str) -> dict[str, Any]:
    """``record`` if it is an items.jsonl object with every field of the right type, else an error."""
    if not isinstance(record, dict):
        raise EvalFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for key, types in RECORD_TYPES.items():
        if key not in record:
            raise EvalFileError(f"{where}: record lacks {key!r}; expected keys {list(RECORD_TYPES)}")
        value = record[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise EvalFileError(f"{where}: {key!r} must be {names}, got {value!r}")
    if not isinstance(record.get("image", ""), str):  # optional: records written before it was kept
        raise EvalFileError(f"{where}: 'image' must be str, got {record['image']!r}")
    if record["output_tokens"] < 0:
        raise EvalFileError(f"{where}: 'output_tokens' must be >= 0, got {record['output_tokens']}")
    if any(key in record for key in SAMPLE_TYPES):  # a pass@k record: N answers, each scored
        lengths = set()
        for key, kind in SAMPLE_TYPES.items():
            value = record.get(key)
            if not isinstance(value, list) or not value or not all(type(v) is kind for v in value):
                raise EvalFileError(f"{where}: {key!r} must be a non-empty list of {kind.__name__}")
            lengths.add(len(value))
        if len(lengths) > 1:
            raise EvalFileError(f"{where}: {list(SAMPLE_TYPES)} differ in length")
    return record


def read_records(path: Path, repair: bool = False) -> dict[str, dict[str, Any]]:
    """Validated records of ``items.jsonl`` by id, in file order.

    Blank, corrupt or invalid lines and duplicate ids are errors naming the line. A last line without
    its newline (a write cut short) is an error too, unless ``repair``: then it is cut off the file with
    a message, which is what resuming an interrupted evaluation needs.
    """
    if not path.is_file():
        raise EvalFileError(f"{path}: missing")
    records: dict[str, dict[str, Any]] = {}
    good_bytes = 0
    with path.open("rb") as handle:
        lines = handle.readlines()
    for line_no, raw in enumerate(lines, 1):
        where = f"{path}:{line_no}"
        if not raw.endswith(b"\n"):
            if not repair:
                raise EvalFileError(
                    f"{where}: last line is cut short (an interrupted write); rerun pathvlm eval"
                )
            print(f"{where}: dropped the half-written last line of an interrupted run", file=sys.stderr)
            with path.open("r+b") as handle:
                handle.truncate(good_bytes)
            break
        if not raw.strip():
            raise EvalFileError(f"{where}: blank line")
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise EvalFileError(f"{where}: not UTF-8 JSON ({error})") from error
        record = validate_record(record, where)
        if record["id"] in records:
            raise EvalFileError(f"{where}: duplicate id {record['id']!r}")
        records[record["id"]] = record
        good_bytes += len(raw)
    return records


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line of a JSONL file; any other line is an EvalFileError that
    names the file and line."""
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise EvalFileError(f"{path}:{line_no}: not UTF-8 JSON ({error})") from None
            if not isinstance(row, dict):
                raise EvalFileError(f"{path}:{line_no}: expected a JSON object")
            yield line_no, row


def write_json(path: Path, value: Any) -> None:
    """All-or-nothing JSON write (``write_atomic``)."""
    write_atomic(path, json.dumps(value, indent=2) + "\n")


def write_atomic(path: Path, text: str) -> None:
    """All-or-nothing write (temporary file, fsync, rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in an evaluation folder's ``path``; missing, damaged or another shape: an error that
    says what to do (a summary is rebuilt from items.jsonl; other files: evaluate the folder again)."""
    if not path.is_file():
        raise EvalFileError(f"{path}: missing")
    advice = (
        "delete it and rerun pathvlm eval (it is rebuilt from items.jsonl)"
        if path.name == SUMMARY_FILE
        else f"delete {path.parent} and rerun pathvlm eval"
    )
    try:
        value = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EvalFileError(f"{path}: not UTF-8 JSON ({error}); {advice}") from error
    if not isinstance(value, dict):
        raise EvalFileError(f"{path}: expected a JSON object; {advice}")
    return value


def claim_folder(out_dir: Path, config: dict[str, Any]) -> None:
    """Write ``config.json`` before any item, or check that an existing folder has this identity."""
    config_path, items_path = out_dir / CONFIG_FILE, out_dir / ITEMS_FILE
    if config_path.exists():
        changed = identity_changes(read_json(config_path), config)
        if changed and items_path.exists():
            raise SystemExit(
                f"{out_dir}: items.jsonl was written with other settings {changed} (was, now); "
                "delete the directory or pass another --out"
            )
    elif items_path.exists():
        raise SystemExit(
            f"{items_path}: records without {CONFIG_FILE}, so of unknown model, data and settings; "
            "delete the directory or pass another --out"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(config_path, config)


@contextlib.contextmanager
def eval_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/eval.lock`` (an advisory lock the kernel drops when the holder dies) or exit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_FILE
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise SystemExit(
                f"{out_dir}: another evaluation is writing here (pid {holder}, {path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def check_folder(out_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A finished folder's summary and records, after checking they belong together (else an error)."""
    summary = read_json(out_dir / SUMMARY_FILE)
    config = read_json(out_dir / CONFIG_FILE)
    items_path = out_dir / ITEMS_FILE
    records = read_records(items_path)
    if changed := identity_changes(config, summary):
        raise EvalFileError(
            f"{out_dir / SUMMARY_FILE}: settings differ from {CONFIG_FILE} {changed} (config, summary)"
        )
    n = summary.get("n")
    if len(records) != n:
        extra = (
            f"; lines {n + 1}-{len(records)} are not in the summary"
            if isinstance(n, int) and len(records) > n
            else ""
        )
        raise EvalFileError(f"{items_path}: {len(records)} records, summary.json has n={n}{extra}")
    if "ids_sha256" not in summary:
        raise EvalFileError(
            f"{out_dir / SUMMARY_FILE}: written before evaluation folders had an identity; "
            "delete the folder and rerun pathvlm eval"
        )
    if ids_sha256(records) != summary["ids_sha256"]:
        raise EvalFileError(f"{items_path}: item ids differ from those summary.json was computed on")
    return summary, records
