"""LLaMA-Factory's ``train`` with our trainer callbacks: ``python -m tools.engines.lf_train FILE``.

FILE is ``<stage_dir>/llamafactory.yaml``, written by ``pathvlm run``.

The same as ``llamafactory-cli train FILE`` (LLaMA-Factory's launcher: torchrun when ``FORCE_TORCHRUN`` is set
or more than one GPU is visible, with ``NNODES``, ``NODE_RANK``, ``NPROC_PER_NODE``, ``MASTER_ADDR``,
``MASTER_PORT``), except that each process calls ``run_exp(callbacks=...)`` with the loss guard
(``tools.engines.loss_guard``; K = ``loss_guard_steps`` of the resolved ``config.yaml`` beside FILE).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

STAGE_CONFIG = "config.yaml"  # the runner's resolved stage config, beside the engine's file


def callbacks(engine_file: Path) -> list[Any]:
    """The trainer callbacks for the stage whose LLaMA-Factory arguments are ``engine_file``."""
    from tools.engines.loss_guard import LossGuard

    stage_config = engine_file.parent / STAGE_CONFIG
    cfg = yaml.safe_load(stage_config.read_text(encoding="utf-8")) if stage_config.is_file() else {}
    if "loss_guard_steps" not in cfg:
        raise SystemExit(f"{stage_config}: no loss_guard_steps (write it with `pathvlm run`)")
    return [LossGuard(int(cfg["loss_guard_steps"]))]


def _torchrun(argv: list[str]) -> list[str] | None:
    """The torchrun command LLaMA-Factory's launcher would use, or None for a single process."""
    from llamafactory.extras.misc import find_available_port, get_device_count, is_env_enabled

    if "LOCAL_RANK" in os.environ:  # already one of torchrun's processes
        return None
    if not (is_env_enabled("FORCE_TORCHRUN") or get_device_count() > 1):
        return None
    return [
        *("torchrun", "--nnodes", os.getenv("NNODES", "1"), "--node_rank", os.getenv("NODE_RANK", "0")),
        *("--nproc_per_node", os.getenv("NPROC_PER_NODE", str(get_device_count()))),
        *("--master_addr", os.getenv("MASTER_ADDR", "127.0.0.1")),
        *("--master_port", os.getenv("MASTER_PORT", str(find_available_port()))),
        *("-m", "tools.engines.lf_train", *argv),
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m tools.engines.lf_train", description=__doc__)
    parser.add_argument("config", type=Path, help="<stage_dir>/llamafactory.yaml written by `pathvlm run`")
    args = parser.parse_args(argv)
    launch = _torchrun(argv)
    if launch is not None:
        return subprocess.run(launch, check=False).returncode
    from llamafactory.train.tuner import run_exp

    run_exp(args=yaml.safe_load(args.config.read_text(encoding="utf-8")), callbacks=callbacks(args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
