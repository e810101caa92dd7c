"""A local model folder checked before anything loads it: what a Hugging Face Qwen2.5-VL export needs.

Loading a folder without ``config.json`` would make transformers build a default (full-size) model, and a
folder without weights, with a truncated ``.safetensors`` file or without a tokenizer dies in a traceback
minutes later. ``model_dir_problems`` reads only file names, the JSON files and each safetensors header.
(Copying a trainer's output into a model folder: ``tools.common.model_copy``.)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
_HEADER_LIMIT = 100 * 2**20  # safetensors refuses larger headers too


class ModelDirError(ValueError):
    """A model folder that cannot be loaded; the message names the folder and everything missing."""


def require_model_dir(path: Path) -> None:
    """Raise ModelDirError when the folder ``path`` is not a loadable model (``model_dir_problems``)."""
    problems = model_dir_problems(path)
    if problems:
        raise ModelDirError(f"{path}: not a loadable model folder: {'; '.join(problems)}")


def model_dir_problems(path: Path) -> list[str]:
    """What the model folder ``path`` lacks: config.json, weights (every shard its index names, each
    safetensors file complete), a tokenizer."""
    problems = _config_problems(path / "config.json")
    weights = sorted({p for pattern in WEIGHT_PATTERNS for p in path.glob(pattern) if p.is_file()})
    problems += _index_problems(path)
    if not weights:
        problems.append("no weights (*.safetensors or pytorch_model*.bin)")
    problems += [
        problem for file in weights if file.suffix == ".safetensors" for problem in _safetensors(file)
    ]
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"no tokenizer (one of {', '.join(TOKENIZER_FILES)})")
    return problems


def _config_problems(config: Path) -> list[str]:
    if not config.is_file():
        return ["no config.json"]
    try:
        values = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"config.json is not readable JSON ({exc})"]
    return (
        [] if isinstance(values, dict) and values.get("model_type") else ["config.json names no model_type"]
    )


def _index_problems(path: Path) -> list[str]:
    for name in INDEX_FILES:
        index = path / name
        if not index.is_file():
            continue
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return [f"{name} is not a readable weight index ({exc!r})"]
        return [f"no {shard} (named by {name})" for shard in sorted(shards) if not (path / shard).is_file()]
    return []


def _safetensors(file: Path) -> list[str]:
    """A safetensors file whose header reads and whose size covers every tensor it lists."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > min(_HEADER_LIMIT, size - 8):
                return [f"{file.name} is truncated or not a safetensors file (header of {length} bytes)"]
            header = json.loads(handle.read(length))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError, AttributeError) as exc:
        return [f"{file.name} is not a readable safetensors file ({exc!r})"]
    if 8 + length + end > size:
        return [f"{file.name} is truncated ({size} bytes, its header lists {8 + length + end})"]
    return []
