"""Reading source JSON files and checking item fields, with errors that name the file and the item."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tools.data.errors import DataError, ItemError
from tools.data.items import check_text


def load_json(path: Path, what: str) -> tuple[Any, str]:
    """Parsed JSON and the sha256 of its bytes; a missing or malformed file is a DataError."""
    if not path.is_file():
        raise DataError(f"{path} not found: expected {what} (see data/README.md)")
    raw = path.read_bytes()
    try:
        return json.loads(raw), hashlib.sha256(raw).hexdigest()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc


def expect_shape(value: Any, kind: type, path: Path, where: str, expected: str) -> None:
    if not isinstance(value, kind):
        raise DataError(f"{path}: {where} must be {expected}, got {type(value).__name__}")


def field(raw: dict[str, Any], name: str, kinds: tuple[type, ...], path: Path, label: str) -> Any:
    """``raw[name]``, which must exist, have one of ``kinds`` and (for strings) not be blank."""
    if name not in raw:
        raise ItemError(path, label, f"missing field {name!r}")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(kind.__name__ for kind in kinds)
        raise ItemError(path, label, f"field {name!r} must be {names}, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise ItemError(path, label, f"field {name!r} is empty")
    return value


def item_label(raw: Any, id_key: str, path: Path, label: str) -> str:
    """``label`` plus the item's id (``id_key``, where present), for messages; ``raw`` must be an object."""
    if not isinstance(raw, dict):
        raise ItemError(path, label, f"expected an object, got {type(raw).__name__}")
    return label + (f" ({id_key}={raw[id_key]!r})" if id_key in raw else "")


def text_field(raw: dict[str, Any], name: str, path: Path, label: str) -> str:
    """A string field (``field``) that ``check_text`` accepts."""
    return check_text(field(raw, name, (str,), path, label), f"field {name!r}", path, label)
