"""LLaMA-Factory 0.9.5 SFT that checkpoints on request: ``python -m tools.train.engines.sft_train <yaml>``.

What ``llamafactory-cli train`` does, plus two trainer callbacks (``tools.train.engines.stop.StopAndSave`` and
``engines.loss_guard.LossGuard``, K = ``loss_guard_steps`` of the ``config.yaml`` beside the YAML):
it calls LLaMA-Factory's own ``run_exp(args, callbacks=[...])``. Like LLaMA-Factory's launcher, it starts
one process per GPU with torchrun when ``FORCE_TORCHRUN`` is set or more than one GPU is visible, with the
same variables (``NNODES``, ``NODE_RANK``, ``NPROC_PER_NODE``, ``MASTER_ADDR``, ``MASTER_PORT``); each
rank then runs this module again. Not supported (LLaMA-Factory's launcher has them): elastic launch
(``RDZV_ID``), Ray, KTransformers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

import tools.common.wandb_first  # noqa: F401  (before LLaMA-Factory imports torch)

STAGE_CONFIG = "config.yaml"  # the runner's resolved stage config, beside the engine's file


def _needs_torchrun() -> bool:
    from llamafactory.extras.misc import get_device_count, is_env_enabled

    under_torchrun = "LOCAL_RANK" in os.environ
    return not under_torchrun and (is_env_enabled("FORCE_TORCHRUN") or get_device_count() > 1)


def torchrun_command(config: Path) -> list[str]:
    """LLaMA-Factory's torchrun launch (``llamafactory/launcher.py``) of this module."""
    from llamafactory.extras.misc import find_available_port, get_device_count

    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        os.environ.get("NNODES", "1"),
        "--node_rank",
        os.environ.get("NODE_RANK", "0"),
        "--nproc_per_node",
        os.environ.get("NPROC_PER_NODE", str(get_device_count())),
        "--master_addr",
        os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "--master_port",
        os.environ.get("MASTER_PORT", str(find_available_port())),
        "-m",
        "tools.train.engines.sft_train",
        str(config),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.train.engines.sft_train",
        description=__doc__.split("\n\n")[0] + " The stage runner writes the YAML and runs this.",
    )
    parser.add_argument(
        "config", type=Path, help="LLaMA-Factory train arguments (runs/<size>/<stage>/llamafactory.yaml)"
    )
    args = parser.parse_args(argv)
    if _needs_torchrun():
        from llamafactory.extras.misc import is_env_enabled

        from tools.train.engines import die_with_parent

        env = dict(os.environ)
        if is_env_enabled("OPTIM_TORCH", "1"):  # as LLaMA-Factory's launcher
            env["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
            env["TORCH_NCCL_AVOID_RECORD_STREAMS"] = "1"
        preexec = die_with_parent if sys.platform == "linux" else None  # torchrun stops when this does
        return subprocess.run(torchrun_command(args.config), env=env, preexec_fn=preexec).returncode

    from llamafactory.train.tuner import run_exp

    from tools.train.engines.stop import StopAndSave

    train_args = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    run_exp(train_args, callbacks=[StopAndSave(), loss_guard(args.config)])
    return 0


def loss_guard(engine_file: Path) -> Any:
    """The loss guard (``engines.loss_guard``) with K = ``loss_guard_steps`` of the stage's resolved
    ``config.yaml`` beside ``engine_file``."""
    from tools.train.engines.loss_guard import LossGuard

    stage_config = engine_file.parent / STAGE_CONFIG
    cfg = yaml.safe_load(stage_config.read_text(encoding="utf-8")) if stage_config.is_file() else {}
    if "loss_guard_steps" not in (cfg or {}):
        raise SystemExit(f"{stage_config}: no loss_guard_steps (write it with `pathvlm run`)")
    return LossGuard(int(cfg["loss_guard_steps"]))


if __name__ == "__main__":
    sys.exit(main())
