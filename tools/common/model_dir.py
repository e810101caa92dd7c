"""A local model folder checked before anything loads it: what a Hugging Face Qwen2.5-VL export needs.

Loading a folder without ``config.json`` would make transformers build a default (full-size) model, and a
folder without weights, with a truncated ``.safetensors`` file or without a tokenizer dies in a traceback
minutes later. ``model_dir_problems`` reads only file names, the JSON files and each safetensors header.
``copy_model`` copies a trainer's output or checkpoint (``model_files``: without optimizer states and logs)
into a model folder with Qwen's flat config.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path

from tools.common.qwen_config import write_flat_config

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
_HEADER_LIMIT = 100 * 2**20  # safetensors refuses larger headers too
TRAINER_STATE = "trainer_state.json"  # transformers writes it last when it saves a checkpoint or finishes
# Trainer outputs next to the final model that are not part of a Hugging Face model directory.
_NOT_MODEL_FILES = {
    TRAINER_STATE,
    "training_args.bin",
    "all_results.json",
    "train_results.json",
    "eval_results.json",
    "latest",  # DeepSpeed's pointer to its global_stepN state in a checkpoint
}
_NOT_MODEL_SUFFIXES = {".jsonl", ".md", ".png", ".pt", ".pth", ".py"}  # .pt/.pth: optimizer, scheduler, rng


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


def model_files(model_dir: Path) -> list[Path]:
    """The model files a Hugging Face Trainer saved in ``model_dir`` (its output or a checkpoint)."""
    return [
        p
        for p in model_dir.iterdir()
        if p.is_file() and p.name not in _NOT_MODEL_FILES and p.suffix not in _NOT_MODEL_SUFFIXES
    ]


def copy_model(src: Path, dst: Path, files: Iterable[Path] | None = None) -> None:
    """Copy a Hugging Face model directory ``src`` (or just ``files``) to ``dst`` with a flat Qwen config.

    Writes to a sibling temporary directory first, so ``dst`` is either absent or complete.
    """
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src}: no config.json, expected a saved Hugging Face model")
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in files if files is not None else src.iterdir():
        if path.is_file():
            shutil.copy2(path, tmp / path.name)
    write_flat_config(tmp)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
