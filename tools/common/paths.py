"""Where things are: the repository, the recipes, and the folders the ``PATHVLM_*`` variables point to.

Every command reads these here, each time it is called (a test or a wrapper may set the variable first):

- ``PATHVLM_RECIPES``: the recipes folder (default ``recipes/`` of this repository), the registry of stages,
  sizes, budgets and profiles (``tools.recipe.registry``);
- ``PATHVLM_RUNS``: the runs root (default ``runs``), ``<runs>/<size>/<stage>/``;
- ``PATHVLM_DATA``: the generated data (default ``data/generated``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES_ENV = "PATHVLM_RECIPES"
RUNS_ENV, DEFAULT_RUNS = "PATHVLM_RUNS", "runs"
DATA_ENV, DEFAULT_DATA = "PATHVLM_DATA", "data/generated"


def recipes_dir() -> Path:
    return Path(os.environ.get(RECIPES_ENV) or REPO_ROOT / "recipes")


def runs_root() -> Path:
    return Path(os.environ.get(RUNS_ENV, DEFAULT_RUNS))


def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV, DEFAULT_DATA))


def repo_file(path: str | Path) -> Path:
    """A repository file a recipe names (reward function, DeepSpeed json), absolute or under the repo."""
    return Path(path) if Path(path).is_absolute() else REPO_ROOT / path
