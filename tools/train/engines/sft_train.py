"""LLaMA-Factory 0.9.5 SFT that checkpoints on request: ``python -m tools.train.engines.sft_train <yaml>``.

What ``llamafactory-cli train`` does, plus two trainer callbacks (``tools.train.engines.stop.StopAndSave``,
watching the ``STOP`` file beside the YAML, and ``engines.loss_guard.LossGuard``, K = the YAML's own
``loss_guard_steps``, which the runner adds and this takes out before LLaMA-Factory reads the rest):
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

import yaml

import tools.common.wandb_first  # noqa: F401  (before LLaMA-Factory imports torch)

# isort: split
from tools.recipe.run import Run
from tools.train.engines.llamafactory import LOSS_GUARD_KEY
from tools.train.engines.loss_guard import LossGuard
from tools.train.engines.stop import StopAndSave
from tools.train.process import die_with_parent


def _needs_torchrun() -> bool:
    from llamafactory.extras.misc import get_device_count, is_env_enabled

    under_torchrun = "LOCAL_RANK" in os.environ
    return not under_torchrun and (is_env_enabled("FORCE_TORCHRUN") or get_device_count() > 1)


def torchrun_command(config: Path) -> list[str]:
    """LLaMA-Factory's torchrun launch (``llamafactory/launcher.py``) of this module."""
    from llamafactory.extras.misc import find_available_port, get_device_count

    options = {
        "--nnodes": os.environ.get("NNODES", "1"),
        "--node_rank": os.environ.get("NODE_RANK", "0"),
        "--nproc_per_node": os.environ.get("NPROC_PER_NODE") or str(get_device_count()),
        "--master_addr": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "--master_port": os.environ.get("MASTER_PORT") or str(find_available_port()),
    }
    launch = [arg for option in options.items() for arg in option]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launch,
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

        env = dict(os.environ)
        if is_env_enabled("OPTIM_TORCH", "1"):  # as LLaMA-Factory's launcher
            env["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
            env["TORCH_NCCL_AVOID_RECORD_STREAMS"] = "1"
        preexec = die_with_parent if sys.platform == "linux" else None  # torchrun stops when this does
        return subprocess.run(torchrun_command(args.config), env=env, preexec_fn=preexec).returncode

    from llamafactory.train.tuner import run_exp  # deferred: the torchrun parent above needs none of it

    train_args = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    if LOSS_GUARD_KEY not in train_args:
        raise SystemExit(f"{args.config}: no {LOSS_GUARD_KEY} (written by `pathvlm run`)")
    guard = LossGuard(int(train_args.pop(LOSS_GUARD_KEY)))
    run_exp(train_args, callbacks=[StopAndSave(path=Run.at(args.config.parent).stop), guard])
    return 0


if __name__ == "__main__":
    sys.exit(main())
