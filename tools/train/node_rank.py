"""Multi-node SFT (``sbatch --nodes=N slurm/sft.sbatch``): the runner runs on every node, but only node rank 0
prepares (writes the configs, removes incomplete checkpoints), exports and writes ``DONE``; the other nodes
run the engine only.

Node rank 0 deletes ``stage_dir/.launch`` when it starts and writes it again (atomically) once the stage
directory is ready, naming the config hash, this launch (SLURM job id and restart count) and whether the
engine is launched at all. The other nodes wait for that file (``$PATHVLM_NODE_WAIT_S``, default 1800 s),
then start their engine, which joins rank 0's torchrun rendezvous, and log to ``train.node<R>.log``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

LAUNCH_FILE = ".launch"
WAIT_ENV, DEFAULT_WAIT_S = "PATHVLM_NODE_WAIT_S", 1800.0
POLL_S = 2.0


def node_rank() -> int:
    """This node's rank in a multi-node launch (``NODE_RANK`` with ``NNODES`` > 1), else 0."""
    if int(os.environ.get("NNODES", "1")) <= 1:
        return 0
    return int(os.environ.get("NODE_RANK", "0"))


def launch_token() -> str:
    return f"{os.environ.get('SLURM_JOB_ID', '')}.{os.environ.get('SLURM_RESTART_COUNT', '0')}"


def clear(stage_dir: Path) -> None:
    (stage_dir / LAUNCH_FILE).unlink(missing_ok=True)


def announce(stage_dir: Path, config_hash: str, launch: bool) -> None:
    """Node rank 0: the stage directory is ready; the other nodes may start (``launch``) or stop."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    tmp = stage_dir / f"{LAUNCH_FILE}.tmp"
    tmp.write_text(f"{config_hash} {launch_token()} {'launch' if launch else 'skip'}\n", encoding="utf-8")
    tmp.rename(stage_dir / LAUNCH_FILE)


def wait_for_rank0(stage_dir: Path, config_hash: str) -> bool:
    """Other nodes: wait for node rank 0's announcement of this launch; True when the engine runs."""
    path, token = stage_dir / LAUNCH_FILE, launch_token()
    timeout = float(os.environ.get(WAIT_ENV, DEFAULT_WAIT_S))
    deadline = time.monotonic() + timeout
    while True:
        if path.is_file():
            fields = path.read_text(encoding="utf-8").split()
            if len(fields) == 3 and fields[:2] == [config_hash, token]:
                return fields[2] == "launch"
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"node rank {node_rank()}: node rank 0 did not prepare {stage_dir} for config "
                f"{config_hash[:12]} (launch {token}) within {timeout:.0f} s (${WAIT_ENV}); see node 0's log"
            )
        time.sleep(POLL_S)
