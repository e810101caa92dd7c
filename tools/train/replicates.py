"""Replicate runs of a stage with other training seeds: their run folder and W&B run names.

The recipe's seed (``seed`` in ``recipes/stages/_common.yaml``) trains in ``runs/<size>/<stage>``; another
seed N in ``runs/<size>/<stage>-seedN``, starting from the parent run with the same seed, W&B run name
``<size>-<stage>-seedN``. The data split never depends on the seed.
"""

from __future__ import annotations

import re

SEED_SUFFIX = "-seed"
_RUN_NAME = re.compile(rf"^(?P<stage>.+?)(?:{SEED_SUFFIX}(?P<seed>\d+))?$")


def run_stage(stage: str, seed: int | None, default_seed: int) -> str:
    """The run folder name of ``stage`` trained with ``seed`` (None or the recipe's seed: ``stage``)."""
    return stage if seed is None or seed == default_seed else f"{stage}{SEED_SUFFIX}{seed}"


def parse_run_stage(name: str) -> tuple[str, int | None]:
    """(stage, seed) of a run folder name; seed None for the recipe's own seed."""
    match = _RUN_NAME.match(name)
    assert match is not None  # the pattern matches every non-empty name
    seed = match.group("seed")
    return match.group("stage"), int(seed) if seed is not None else None
