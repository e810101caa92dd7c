"""Errors that name the file and the item, and the ``--skip-invalid`` rejects collector."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tools.common.errors import UserError


class DataError(UserError):
    """Bad input that stops a conversion (wrong file, wrong JSON shape, impossible split, ...)."""


class ItemError(DataError):
    """One bad item: ``--skip-invalid`` turns it into a line of the rejects file instead."""

    def __init__(self, file: Path | str, item: str, problem: str) -> None:
        self.file, self.item, self.problem = str(file), item, problem
        super().__init__(f"{file}: item {item}: {problem}")


class Rejects:
    """Raises item errors, or (``skip_invalid``) records them for ``rejects.jsonl``; never drops silently."""

    FILE_NAME = "rejects.jsonl"

    def __init__(self, skip_invalid: bool) -> None:
        self.skip_invalid = skip_invalid
        self.errors: list[ItemError] = []

    def add(self, error: ItemError) -> None:
        if not self.skip_invalid:
            raise DataError(f"{error} (use --skip-invalid to write it to {self.FILE_NAME} and go on)")
        self.errors.append(error)

    def write(self, folder: Path, name: str = FILE_NAME) -> None:
        """Write ``folder/<name>`` when items were rejected (``report`` tells the user)."""
        if self.errors:
            folder.mkdir(parents=True, exist_ok=True)
            rows = ({"file": e.file, "item": e.item, "error": e.problem} for e in self.errors)
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            (folder / name).write_text(text, encoding="utf-8")

    def write_beside(self, out: Path) -> None:
        """After a failed conversion: the rejects go to ``<out>.rejects.jsonl``, ``out`` stays untouched."""
        self.write(out.parent, f"{out.name}.{self.FILE_NAME}")
        self.report(out.parent, f"{out.name}.{self.FILE_NAME}")

    def report(self, folder: Path, name: str = FILE_NAME) -> None:
        if self.errors:
            print(f"rejected {len(self.errors)} invalid item(s): see {folder / name}", file=sys.stderr)
