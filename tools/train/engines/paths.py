"""Absolute paths in the files the engines read (``llamafactory.yaml``, ``easyr1.yaml``).

An engine's processes need not share the runner's working directory (torchrun ranks on other nodes, Ray
workers started by a raylet elsewhere), so every relative path an engine reads is made absolute in its file:
data, outputs and caches against the runner's working directory (where ``PATHVLM_DATA`` and ``--runs`` are
relative to), repository files (reward functions, the DeepSpeed json) against the repository, as recipe
validation reads them. The resolved ``config.yaml`` and its hash keep the recipe's own values, so a stage
resumes from another checkout or working directory.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.common.paths import REPO_ROOT

# Each engine file's path keys (dotted) and what a relative one is relative to.
LLAMAFACTORY_PATHS = {"dataset_dir": Path.cwd, "deepspeed": lambda: REPO_ROOT}
EASYR1_PATHS = {
    "data.train_files": Path.cwd,
    "data.val_files": Path.cwd,
    "worker.reward.reward_function": lambda: REPO_ROOT,
    "worker.reward.reward_function_kwargs.judge.cache_dir": Path.cwd,
}


def absolute(value: str, base: Path) -> str:
    """``value`` (a path, optionally with EasyR1's ``@split`` or ``:function`` suffix) made absolute."""
    path, sep, suffix = value, "", ""
    for mark in ("@", ":"):
        if mark in value and not value.startswith(("http:", "https:")):
            path, sep, suffix = value.rpartition(mark) if mark == ":" else value.partition(mark)
            break
    resolved = Path(path) if Path(path).is_absolute() else (base / path).resolve()
    return f"{resolved}{sep}{suffix}"


def with_absolute_paths(section: dict[str, Any], keys: dict[str, Callable[[], Path]]) -> dict[str, Any]:
    """A copy of ``section`` whose (dotted) ``keys`` that hold a string are absolute paths."""
    out = copy.deepcopy(section)
    for dotted, base in keys.items():
        *parents, leaf = dotted.split(".")
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(leaf), str):
            node[leaf] = absolute(node[leaf], base())
    return out
