"""A converted data folder's ``manifest.json`` lists every file it wrote with its sha256: hashing files and
checking a folder against its manifest (the conversion writes it, the runner checks it before training)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``folder`` except the manifest."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != MANIFEST
    }


def load_json(path: Path, problems: list[str], lines: bool = False) -> Any:
    """Parsed JSON (a list of rows for JSONL), or None after recording in ``problems`` why not."""
    if not path.is_file():
        problems.append(f"{path}: missing")
        return None
    try:
        text = path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()] if lines else json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: not valid JSON ({exc})")
        return None


def check_files(out: Path, manifest: Any) -> list[str]:
    """How the files in ``out`` differ from those its manifest (parsed, or its path) lists, by sha256."""
    problems: list[str] = []
    if isinstance(manifest, Path):
        manifest = load_json(manifest, problems)
        if manifest is None:
            return problems
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        return [
            f"{out / MANIFEST}: no 'files' list (written before file hashes were recorded): convert again"
        ]
    found = file_hashes(out)
    problems = [
        f"{out / name}: {'missing' if name not in found else 'changed since the conversion (sha256 differs)'}"
        for name, digest in listed.items()
        if found.get(name) != digest
    ]
    problems += [
        f"{out / name}: not written by the conversion that wrote {MANIFEST}"
        for name in found
        if name not in listed
    ]
    return problems
