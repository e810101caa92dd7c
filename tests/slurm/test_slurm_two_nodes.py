"""The sbatch scripts on a real two-node cluster: node1 and node2, each slurmd in its own UTS namespace, both
on 127.0.0.1 (``slurm2`` in conftest.py; skipped where namespaces are refused).

grpo.sbatch forms a real Ray cluster (head on node1, worker started by srun on node2) and checks it before
the engine; sft.sbatch gives torchrun consistent variables on both nodes and a gloo all-reduce across them
succeeds; requeue and dependencies work as on one node. The engines are stand-ins: what is under test is
what the scripts give each node.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Records the stage it was asked for and the multi-node variables, then succeeds.
RECORDING_PATHVLM = r"""#!/bin/bash
mkdir -p "$PATHVLM_RUNS"
echo "$(hostname) $* RAY_ADDRESS=${RAY_ADDRESS:-}" >> "$PATHVLM_RUNS/calls.log"
"""

# torchrun over the job's nodes with the variables sft.sbatch exported, running a gloo all-reduce.
TORCHRUN_PATHVLM = r"""#!/bin/bash
exec torchrun --nnodes="$NNODES" --node_rank="$NODE_RANK" --nproc_per_node="$NPROC_PER_NODE" \
    --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" "$ALLREDUCE"
"""
ALLREDUCE = """
import socket
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
rank, world, host = dist.get_rank(), dist.get_world_size(), socket.gethostname()
print(f"allreduce: rank {rank} of {world} on {host}: {value.item():.0f}")
dist.destroy_process_group()
"""

# Counts steps per node rank; TERM (scontrol requeue) stops it, a rerun resumes from the count.
COUNTING_PATHVLM = r"""#!/bin/bash
file="$PATHVLM_RUNS/step.${NODE_RANK:-0}"; mkdir -p "$PATHVLM_RUNS"
step=$(cat "$file" 2>/dev/null || echo 0)
if ((step > 0)); then echo "stub: $(hostname) resumed from step $step"; fi
trap 'exit 143' TERM
while ((step < 40)); do step=$((step + 1)); echo "$step" > "$file"; sleep 0.2 & wait $!; done
echo "stub: $(hostname) done at step $step"
"""


def _venv(tmp_path: Path, pathvlm: str, *real: str) -> Path:
    """A stand-in environment: ``pathvlm`` as given, the real ``python`` and the ``real`` programs."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export VIRTUAL_ENV={venv} PATH="{venv}/bin:$PATH"\n')
    (venv / "bin" / "pathvlm").write_text(pathvlm)
    (venv / "bin" / "pathvlm").chmod(0o755)
    (venv / "bin" / "python").write_text(f'#!/bin/bash\nexec {sys.executable} "$@"\n')  # the real venv's
    (venv / "bin" / "python").chmod(0o755)
    for name in real:
        (venv / "bin" / name).symlink_to(BIN / name)
    return venv


def _submit(slurm, tmp_path: Path, env: dict[str, str], *args: str) -> str:
    """``slurm/submit.sh ARGS`` (the profile's resources first, then ARGS), its log in tmp_path; returns the
    job id."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    output = f"--output={tmp_path}/logs/%x-%j.out"
    result = slurm.cmd(str(REPO / "slurm" / "submit.sh"), "--parsable", output, *args, env=env, cwd=tmp_path)
    return result.stdout.strip().split(";")[0]


def _log(slurm, job: str) -> str:
    path = Path(slurm.job(job)["StdOut"])
    return path.read_text() if path.is_file() else f"(no log {path})"


def test_grpo_forms_a_ray_cluster_over_both_nodes(slurm2, tmp_path: Path) -> None:
    """PROFILE=lean: 2 GPUs per node from the profile (gres), 1 CPU from an explicit option (it wins)."""
    runs = tmp_path / "runs"
    env = {
        "VENV": str(_venv(tmp_path, RECORDING_PATHVLM, "ray")),
        "RUNS": str(runs),
        "SIZE": "3b",
        "PROFILE": "lean",
        "RAY_OBJECT_STORE_BYTES": str(80 * 2**20),  # Ray's minimum: 2 small nodes on one machine
        "RAY_WAIT_S": "120",
        # short (Unix socket paths), and this test's own: another cluster's job 1 may have left /tmp/ray-1
        "RAY_TEMP_DIR": tempfile.mkdtemp(prefix="ray", dir="/tmp"),
    }
    job = _submit(
        slurm2,
        tmp_path,
        env,
        "--nodes=2",
        "--cpus-per-task=1",
        "--mem=1G",
        str(REPO / "slurm" / "grpo.sbatch"),
        "beta",
    )
    try:
        record = slurm2.wait_finished(job, timeout=300)
    finally:
        shutil.rmtree(env["RAY_TEMP_DIR"], ignore_errors=True)
    log = _log(slurm2, job)
    assert record["JobState"] == "COMPLETED", log
    assert record["NodeList"] == "node[1-2]"
    assert (
        "profile lean asks for --gres=gpu:2 --cpus-per-task=16 --mem=96G; the job has 2 GPUs, 1 CPUs" in log
    )
    port = re.search(r"Ray head 127\.0\.0\.1:(\d+) on node1, 2 nodes x 2 GPUs x 1 CPUs", log)
    assert port, log
    hosts = re.findall(r"ray node \w+ at \S+: 2 GPU, 1 CPU, task ran on (node\d)", log)
    assert sorted(hosts) == ["node1", "node2"], log  # one Ray task ran in each node's namespace
    assert log.index("Ray: 2 nodes: finished") < log.index("stage beta: pathvlm run beta")
    call = (runs / "calls.log").read_text().strip()
    assert call == (
        f"node1 run beta --size 3b --profile lean --budget paper --runs {runs} --set easyr1.trainer.nnodes=2 "
        f"--set easyr1.trainer.n_gpus_per_node=2 RAY_ADDRESS=127.0.0.1:{port.group(1)}"
    )
    assert "Ray: stopped" in log


def test_sft_gives_torchrun_one_rendezvous_and_allreduce_succeeds(slurm2, tmp_path: Path) -> None:
    script = tmp_path / "allreduce.py"
    script.write_text(ALLREDUCE)
    env = {
        "VENV": str(_venv(tmp_path, TORCHRUN_PATHVLM, "torchrun")),
        "RUNS": str(tmp_path / "runs"),
        "SIZE": "3b",
        "PROFILE": "cpu",
        "ALLREDUCE": str(script),
        "GLOO_SOCKET_IFNAME": "lo",  # the nodes' hostnames resolve nowhere: gloo talks on loopback
        "OMP_NUM_THREADS": "1",
    }
    job = _submit(slurm2, tmp_path, env, "--nodes=2", "--mem=2G", str(REPO / "slurm" / "sft.sbatch"))
    record = slurm2.wait_finished(job, timeout=300)
    log = _log(slurm2, job)
    assert record["JobState"] == "COMPLETED", log
    port = int(job) % 10000 + 29500
    for rank, node in enumerate(("node1", "node2")):
        line = f"node {node}: NNODES=2 NODE_RANK={rank} MASTER_ADDR=127.0.0.1 MASTER_PORT={port} "
        line += "NPROC_PER_NODE=1"
        assert line in log, log
    results = sorted(re.findall(r"allreduce: rank (\d) of 2 on (node\d): (\d+)", log))
    assert results == [("0", "node1", "3"), ("1", "node2", "3")], log  # 1 + 2 summed across the nodes


def test_requeued_two_node_job_resumes_on_both_nodes(slurm2, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    env = {"VENV": str(_venv(tmp_path, COUNTING_PATHVLM)), "RUNS": str(runs), "SIZE": "3b", "PROFILE": "cpu"}
    job = _submit(
        slurm2,
        tmp_path,
        env,
        "--nodes=2",
        "--cpus-per-task=1",
        "--mem=500M",
        str(REPO / "slurm" / "sft.sbatch"),
    )
    steps = [runs / "step.0", runs / "step.1"]
    done = lambda: all(p.is_file() and int(p.read_text() or 0) >= 3 for p in steps)  # noqa: E731
    slurm2.wait_for(done, 120, "3 steps on both nodes")
    slurm2.cmd("scontrol", "requeue", job)
    record = slurm2.wait_finished(job, timeout=240)
    log = _log(slurm2, job)
    assert record["JobState"] == "COMPLETED", log
    assert record["Restarts"] == "1"
    assert "restart 1 on node[1-2]" in log
    for node in ("node1", "node2"):
        assert re.search(rf"stub: {node} resumed from step \d+", log), log
        assert f"stub: {node} done at step 40" in log


def test_pipeline_dependencies_on_two_nodes(slurm2, tmp_path: Path) -> None:
    """alpha -> beta -> r1 -> eval: each child starts only after its parent ended, on either node."""
    runs = tmp_path / "runs"
    (tmp_path / "logs").mkdir()
    env = {"VENV": str(_venv(tmp_path, RECORDING_PATHVLM)), "RUNS": str(runs), "SIZE": "3b", "PROFILE": "cpu"}
    opts = ("--cpus-per-task=1", "--mem=500M", "--gres=gpu:0", f"--output={tmp_path}/logs/%x-%j.out")
    result = slurm2.cmd(str(REPO / "slurm" / "pipeline.sh"), "--", *opts, env=env, cwd=tmp_path)
    ids = dict(line.split() for line in result.stdout.splitlines())
    assert list(ids) == ["alpha", "beta", "r1", "eval"]
    records = {name: slurm2.wait_finished(job, timeout=300) for name, job in ids.items()}
    assert {name: r["JobState"] for name, r in records.items()} == dict.fromkeys(ids, "COMPLETED"), {
        name: _log(slurm2, job) for name, job in ids.items()
    }
    for child, parent in (("beta", "alpha"), ("r1", "beta"), ("eval", "r1")):
        assert records[child]["Dependency"] in ("(null)", f"afterok:{ids[parent]}")
        start, end = records[child]["StartTime"], records[parent]["EndTime"]
        assert datetime.fromisoformat(start) >= datetime.fromisoformat(end), (child, parent)
    stages = [line.split()[2] for line in (runs / "calls.log").read_text().splitlines()]
    assert stages == ["alpha", "beta", "r1", "--data-root"]  # eval-all last
