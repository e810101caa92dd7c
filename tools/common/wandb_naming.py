"""One place for W&B naming, shared by training stages and evaluation.

Project ``pathvlm-r1``, group = experiment, job_type = stage (or ``eval``), run name ``<size>-<stage>``,
and a stable run id so a requeued job continues the same run. Engines that only read W&B settings from
the environment (EasyR1, LLaMA-Factory through transformers) get them through ``wandb_env``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

WANDB_PROJECT = "pathvlm-r1"


def run_name(size: str, stage: str) -> str:
    return f"{size}-{stage}"


def run_id(experiment: str, size: str, stage: str, job_type: str) -> str:
    """Stable across requeues and re-runs of the same experiment, size, stage and job type."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{experiment}-{size}-{stage}-{job_type}")


def wandb_env(experiment: str, size: str, stage: str, job_type: str | None = None) -> dict[str, str]:
    """The WANDB_* variables that put a run in the right project/group/name and resume it on requeue."""
    job_type = job_type or stage
    return {
        "WANDB_PROJECT": WANDB_PROJECT,
        "WANDB_RUN_GROUP": experiment,
        "WANDB_JOB_TYPE": job_type,
        "WANDB_NAME": run_name(size, stage),
        "WANDB_RUN_ID": run_id(experiment, size, stage, job_type),
        "WANDB_RESUME": "allow",
    }


def init_arguments(env: Mapping[str, str], directory: str, name_suffix: str = "") -> dict[str, str]:
    """``wandb.init`` keyword arguments for the run that ``wandb_env``'s variables ``env`` name, files in
    ``directory``."""
    return {
        "project": env["WANDB_PROJECT"],
        "group": env["WANDB_RUN_GROUP"],
        "job_type": env["WANDB_JOB_TYPE"],
        "name": env["WANDB_NAME"] + name_suffix,
        "id": env["WANDB_RUN_ID"],
        "resume": env.get("WANDB_RESUME", "allow"),
        "dir": directory,
    }


def child_environ(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a child process that starts its own W&B run.

    wandb puts the address of its service process into ``WANDB_SERVICE`` of any process that used it, and
    children inherit it; a child then talks to its parent's service, which may be shut down or busy, and
    ``wandb.init`` times out. Every child gets its own service instead.
    """
    return {key: value for key, value in env.items() if key != "WANDB_SERVICE"}
