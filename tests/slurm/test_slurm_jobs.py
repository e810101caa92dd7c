"""The real scripts under the real test cluster: PROFILE=cpu, the tiny model, synthetic data, a few steps.

sft.sbatch then grpo.sbatch train and export alpha, beta and r1; pipeline.sh chains jobs whose children
start only after their parents end; `scontrol requeue` mid-run resumes from the last checkpoint; a failing
stage leaves a clear error and its dependants never start.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRET = "sk-slurm-jobs-secret-0123456789abcdef"
# This machine's cluster has one node with 2 CPUs and far less memory than the scripts' defaults.
SBATCH_OPTS = ("--cpus-per-task=2", "--mem=4G", "--time=60")  # longer than grpo.sbatch's USR1 lead (30 min)
SFT_ARGS = "--set llamafactory.num_train_epochs=1 llamafactory.per_device_train_batch_size=8"
GRPO_ARGS = "--set easyr1.trainer.max_steps=2 easyr1.trainer.save_freq=1 easyr1.data.max_response_length=16"


@dataclass
class Jobs:
    """Submits the repository's scripts to the test cluster with the cpu-profile environment."""

    slurm: object  # conftest.SlurmCluster
    root: Path
    env: dict[str, str]

    @property
    def work(self) -> Path:
        return self.root / "work"

    def runs(self, stage: str) -> Path:
        return Path(self.env["RUNS"]) / self.env["SIZE"] / stage

    def sbatch(self, script: str, *args: str, opts: tuple[str, ...] = (), **env: str) -> str:
        return self.slurm.sbatch(
            *SBATCH_OPTS, *opts, str(REPO / "slurm" / script), *args, env={**self.env, **env}, cwd=self.work
        )

    def pipeline(self, *args: str, sbatch: tuple[str, ...] = (), **env: str) -> dict[str, str]:
        """Run slurm/pipeline.sh; returns {stage: job id} from its output."""
        output = f"--output={self.work}/logs/%x-%j.out"
        result = self.slurm.cmd(
            str(REPO / "slurm" / "pipeline.sh"),
            *args,
            "--",
            *SBATCH_OPTS,
            output,
            *sbatch,
            env={**self.env, **env},
        )
        return dict(line.split() for line in result.stdout.splitlines())

    def log(self, job_id: str) -> str:
        return Path(self.slurm.job(job_id)["StdOut"]).read_text()


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the fake judge did not listen on port {port} within {timeout}s")


@pytest.fixture(scope="module")
def jobs(slurm, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    """Synthetic PathMMU data (16 sft / 8 rl / 8 test), a fake judge, and the environment the jobs get."""
    root = tmp_path_factory.mktemp("slurm-jobs")
    (root / "work" / "logs").mkdir(parents=True)
    pathvlm = str(BIN / "pathvlm")
    subprocess.run([pathvlm, "data", "synth", "--out", str(root / "src"), "--items", "32"], check=True)
    convert = [
        pathvlm,
        "data",
        "pathmmu",
        "--root",
        str(root / "src"),
        "--out",
        str(root / "data" / "pathmmu"),
    ]
    subprocess.run([*convert, "--sizes", "16,8"], check=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    judge = subprocess.Popen([pathvlm, "judge-server", "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        _wait_port(port)
        env = {
            "PROFILE": "cpu",
            "SIZE": "tiny",
            "VENV": sys.prefix,
            "RUNS": str(root / "runs"),
            "PATHVLM_DATA": str(root / "data"),
            "PATHVLM_TINY_MODEL": str(tiny_model),
            "PATHVLM_JUDGE_PORT": str(port),
            "PATHVLM_JUDGE_CACHE": str(root / "judge-cache"),
            "PATHVLM_SFT_ARGS": SFT_ARGS,
            "PATHVLM_GRPO_ARGS": GRPO_ARGS,
            "PATHVLM_EVAL_ARGS": "--max-new-tokens 16",
            "WANDB_MODE": "offline",
            "WANDB_DIR": str(root),
            "OPENAI_API_KEY": SECRET,
        }
        yield Jobs(slurm, root, env)
    finally:
        judge.terminate()
        judge.wait(timeout=30)


@pytest.fixture(scope="module")
def trained(jobs: Jobs) -> dict[str, str]:
    """`sbatch slurm/sft.sbatch`, then `sbatch slurm/grpo.sbatch` once it completed: {name: job id}."""
    sft = jobs.sbatch("sft.sbatch")
    jobs.slurm.wait_finished(sft, timeout=600)
    grpo = jobs.sbatch("grpo.sbatch")
    jobs.slurm.wait_finished(grpo, timeout=900)
    return {"sft": sft, "grpo": grpo}


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_sft_then_grpo_complete_and_export_models(jobs: Jobs, trained: dict[str, str]) -> None:
    for name, job_id in trained.items():
        record = jobs.slurm.job(job_id)
        assert record["JobState"] == "COMPLETED", f"{name} job {job_id}:\n{jobs.log(job_id)}"
        assert record["StdOut"] == f"{jobs.work}/logs/pathvlm-{name}-{job_id}.out"
    for stage in ("alpha", "beta", "r1"):
        assert (jobs.runs(stage) / "DONE").is_file(), stage
        config = json.loads((jobs.runs(stage) / "model" / "config.json").read_text())
        assert config["model_type"] == "qwen2_5_vl"
    sft_log, grpo_log = jobs.log(trained["sft"]), jobs.log(trained["grpo"])
    assert re.search(r"\] start: job \d+ \(pathvlm-sft\) restart 0", sft_log)
    assert re.search(r"\] end: exit 0 after \d+s", sft_log)
    for stage, log in (("alpha", sft_log), ("beta", grpo_log), ("r1", grpo_log)):
        assert f"stage {stage}: resolved config {jobs.runs(stage)}/config.yaml" in log
        assert f"tiny/{stage} done in" in log
    assert grpo_log.index("tiny/beta done in") < grpo_log.index("tiny/r1: training from the start")
    assert "OPENAI_API_KEY set" in sft_log
    for log in (sft_log, grpo_log):
        assert SECRET not in log
    for stage in ("alpha", "beta", "r1"):
        assert SECRET not in (jobs.runs(stage) / "config.yaml").read_text()


def test_pipeline_chains_jobs_with_dependencies(jobs: Jobs, trained: dict[str, str]) -> None:
    """alpha -> beta -> r1 -> eval: alpha, beta and r1 are DONE already (skipped); eval evaluates them."""
    ids = jobs.pipeline()
    assert list(ids) == ["alpha", "beta", "r1", "eval"]
    for child, parent in (("beta", "alpha"), ("r1", "beta"), ("eval", "r1")):
        record = jobs.slurm.job(ids[child])
        assert record["Dependency"].startswith(f"afterok:{ids[parent]}"), record
        assert record["JobState"] == "PENDING"
    for job_id in ids.values():
        jobs.slurm.wait_finished(job_id, timeout=600)
    records = {stage: jobs.slurm.job(job_id) for stage, job_id in ids.items()}
    for stage, record in records.items():
        assert record["JobState"] == "COMPLETED", f"{stage}:\n{jobs.log(ids[stage])}"
        assert record["JobName"] == f"pathvlm-tiny-{stage}"
    for child, parent in (("beta", "alpha"), ("r1", "beta"), ("eval", "r1")):
        assert _time(records[child]["StartTime"]) >= _time(records[parent]["EndTime"]), (child, parent)
    assert "tiny/alpha is already done" in jobs.log(ids["alpha"])
    for model in ("base", "alpha", "beta", "r1"):
        summary = json.loads((jobs.runs(model) / "eval" / "test" / "summary.json").read_text())
        assert summary["n"] == 8, model


def test_requeued_job_resumes_from_its_checkpoint(jobs: Jobs) -> None:
    """`scontrol requeue` mid-run: the job restarts and the runner resumes from the last checkpoint."""
    checkpoints = jobs.runs("delta") / "checkpoints"
    job_id = jobs.sbatch(
        "sft.sbatch",
        "delta",
        # long enough (100 steps) that the requeue lands mid-run, however fast the tiny model trains
        PATHVLM_SFT_ARGS=f"{SFT_ARGS} llamafactory.num_train_epochs=100 llamafactory.save_steps=10",
    )
    jobs.slurm.wait_for(
        lambda: any(checkpoints.glob("checkpoint-*/trainer_state.json")), 600, "delta's first checkpoint"
    )
    jobs.slurm.cmd("scontrol", "requeue", job_id)
    record = jobs.slurm.wait_finished(job_id, timeout=600)
    log = jobs.log(job_id)
    assert record["JobState"] == "COMPLETED", log
    assert record["Restarts"] == "1"
    assert "restart 1 on" in log
    assert log.count("tiny/delta: training from the start") == 1
    resumed = re.search(r"tiny/delta: resuming from \S*checkpoint-(\d+)", log)
    assert resumed and int(resumed.group(1)) >= 10, log
    state = json.loads((checkpoints / "trainer_state.json").read_text())
    assert state["global_step"] == state["max_steps"] == 100  # 8 rl items, 8 per step, 100 epochs
    runs = sorted(p.name for p in (jobs.root / "wandb").glob("offline-run-*-tiny-delta-*"))
    assert len(runs) == 2 and len({name.split("-", 3)[3] for name in runs}) == 1, runs  # one W&B run id


def test_failing_stage_leaves_dependants_unstarted(jobs: Jobs, tmp_path: Path) -> None:
    ids = jobs.pipeline(RUNS=str(tmp_path / "runs"), PATHVLM_SFT_ARGS="--set llamafactory.no_such_option=1")
    failed = jobs.slurm.wait_finished(ids["alpha"], timeout=300)
    assert failed["JobState"] == "FAILED"
    log = jobs.log(ids["alpha"])
    assert "no_such_option" in log
    assert "ERROR: stage alpha failed with exit 2" in log
    for stage in ("beta", "r1", "eval"):
        record = jobs.slurm.wait_finished(ids[stage], timeout=60)
        assert record["JobState"] == "CANCELLED", record
        assert record["Reason"] == "DependencyNeverSatisfied"
        assert not Path(record["StdOut"]).exists()  # never started: no output file
    assert not (tmp_path / "runs" / "tiny" / "beta").exists()


def test_pipeline_with_controls_dependency_graph(jobs: Jobs) -> None:
    """--controls adds gamma (after alpha), delta and epsilon (from the base model); eval waits for all."""
    ids = jobs.pipeline("--controls", sbatch=("--hold",))
    try:
        assert list(ids) == ["alpha", "beta", "r1", "gamma", "delta", "epsilon", "eval"]
        dependency = {stage: jobs.slurm.job(job_id)["Dependency"] for stage, job_id in ids.items()}
        assert dependency["gamma"] == f"afterok:{ids['alpha']}(unfulfilled)"
        assert dependency["delta"] == dependency["epsilon"] == dependency["alpha"] == "(null)"
        parents = [ids[s] for s in ("r1", "gamma", "delta", "epsilon")]
        assert dependency["eval"] == ",".join(f"afterok:{p}(unfulfilled)" for p in parents)
    finally:
        jobs.slurm.cmd("scancel", *ids.values())
