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
from pathlib import Path
from typing import Any

from tools.common.paths import REPO_ROOT

LLAMAFACTORY_PATHS = {"dataset_dir": Path.cwd, "deepspeed": lambda: REPO_ROOT}
EASYR1_PATHS = {
    ("data", "train_files"): Path.cwd,
    ("data", "val_files"): Path.cwd,
    ("worker", "reward", "reward_function"): lambda: REPO_ROOT,
    ("worker", "reward", "reward_function_kwargs", "judge", "cache_dir"): Path.cwd,
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


def llamafactory_file(args: dict[str, Any]) -> dict[str, Any]:
    out = dict(args)
    for key, base in LLAMAFACTORY_PATHS.items():
        if isinstance(out.get(key), str):
            out[key] = absolute(out[key], base())
    return out


def easyr1_file(section: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(section)
    for keys, base in EASYR1_PATHS.items():
        node = out
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
            node[keys[-1]] = absolute(node[keys[-1]], base())
    return out
