"""Copying a saved Hugging Face model directory (a trainer's output or a checkpoint) as a model folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from tools.common.qwen_config import write_flat_config

# Trainer outputs next to a saved model that are not part of a Hugging Face model directory.
_NOT_MODEL_FILES = {
    "trainer_state.json",
    "training_args.bin",
    "all_results.json",
    "train_results.json",
    "eval_results.json",
    "latest",  # DeepSpeed's pointer to its global_stepN state in a checkpoint
}
_NOT_MODEL_SUFFIXES = {".jsonl", ".md", ".png", ".pt", ".pth", ".py"}  # .pt/.pth: optimizer, scheduler, rng


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
