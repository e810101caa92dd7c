"""GRPO with EasyR1 (GPU): ``python -m verl.trainer.main config=<stage_dir>/easyr1.yaml``.

Checkpoints go to ``<stage_dir>/checkpoints/global_step_N/actor``; with ``trainer.find_last_checkpoint`` an
interrupted run resumes from the last one. The export merges the last actor checkpoint into a Hugging Face
model with EasyR1's ``scripts/model_merger.py``, which ships in EasyR1's source tree but not in its wheel:
set ``EASYR1_HOME`` to a checkout of the pinned commit (default ``.cache/EasyR1``), e.g.
``git clone https://github.com/hiyouga/EasyR1 .cache/EasyR1 && git -C .cache/EasyR1 checkout b44b311``.
Multi-node: start Ray on every node first (``ray start --head`` / ``ray start --address``) and set
``easyr1.trainer.nnodes``; the command runs on the head node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.engines import CHECKPOINT_DIR, METRICS_FILE, MODEL_DIR, copy_model, write_jsonl
from tools.wandb_naming import WANDB_PROJECT

CONFIG_NAME = "easyr1.yaml"
LAUNCH_ENV: tuple[str, ...] = ()
TRACKER = "checkpoint_tracker.json"  # verl.utils.checkpoint.CHECKPOINT_TRACKER
EXPERIMENT_LOG = "experiment_log.jsonl"  # written by EasyR1's `file` logger
DEFAULT_EASYR1_HOME = ".cache/EasyR1"


def prepare(cfg: dict[str, Any], stage_dir: Path, init_model: str, run_name: str) -> None:
    """Model, checkpoint directory and logger names; shared with the TRL engine, which reads the same keys."""
    section = cfg["easyr1"]
    section["worker"]["actor"]["model"]["model_path"] = init_model
    trainer = section["trainer"]
    trainer["save_checkpoint_path"] = str(stage_dir / CHECKPOINT_DIR)
    trainer["project_name"] = WANDB_PROJECT
    trainer["experiment_name"] = run_name
    trainer["find_last_checkpoint"] = True
    trainer["load_checkpoint_path"] = None
    trainer["logger"] = list(dict.fromkeys([*trainer.get("logger", []), "file", "wandb"]))


def engine_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["easyr1"]


def command(stage_dir: Path) -> list[str]:
    return [sys.executable, "-m", "verl.trainer.main", f"config={stage_dir / CONFIG_NAME}"]


def finished(cfg: dict[str, Any], stage_dir: Path) -> bool:
    return False  # a relaunch resumes from the last checkpoint and stops at once when no step is left


def before_launch(cfg: dict[str, Any]) -> Path | None:
    """The ``global_step_N`` EasyR1 resumes from (``trainer.find_last_checkpoint``), if any. (The runner
    counts the prompts ``data.filter_overlong_prompts`` will drop before it calls this.)"""
    section = cfg["easyr1"]
    tracker = Path(section["trainer"]["save_checkpoint_path"]) / TRACKER
    if not tracker.is_file():
        return None
    step = json.loads(tracker.read_text(encoding="utf-8"))["last_global_step"]
    return tracker.parent / f"global_step_{step}"


def merger_script() -> Path:
    home = Path(os.environ.get("EASYR1_HOME", DEFAULT_EASYR1_HOME))
    script = home / "scripts" / "model_merger.py"
    if not script.is_file():
        raise FileNotFoundError(
            f"{script} not found: EasyR1's model merger ships in its source tree, not its wheel. Set "
            "EASYR1_HOME to an EasyR1 checkout at commit b44b311 (git clone "
            f"https://github.com/hiyouga/EasyR1 {DEFAULT_EASYR1_HOME} && "
            f"git -C {DEFAULT_EASYR1_HOME} checkout b44b311)"
        )
    return script


def last_actor_checkpoint(checkpoint_dir: Path) -> Path:
    tracker = checkpoint_dir / TRACKER
    if not tracker.is_file():
        raise FileNotFoundError(f"{tracker} not found: EasyR1 saved no checkpoint (set trainer.save_freq)")
    step = json.loads(tracker.read_text(encoding="utf-8"))["last_global_step"]
    actor = checkpoint_dir / f"global_step_{step}" / "actor"
    if not actor.is_dir():
        raise FileNotFoundError(f"{actor} not found (named by {tracker})")
    return actor


def export(cfg: dict[str, Any], stage_dir: Path) -> None:
    """Merge the last actor checkpoint (``…/global_step_N/actor``) and copy it to ``stage_dir/model``."""
    checkpoint_dir = Path(cfg["easyr1"]["trainer"]["save_checkpoint_path"])
    actor = last_actor_checkpoint(checkpoint_dir)
    subprocess.run([sys.executable, str(merger_script()), "--local_dir", str(actor)], check=True)
    copy_model(actor / "huggingface", stage_dir / MODEL_DIR)
    log = checkpoint_dir / EXPERIMENT_LOG
    if log.is_file():
        rows = [
            _flatten(json.loads(line))
            for line in log.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        write_jsonl(stage_dir / METRICS_FILE, rows)


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """EasyR1's file logger nests ``reward/format`` as ``{"reward": {"format": …}}``: undo it."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat
