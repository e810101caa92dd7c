"""The test cluster itself: a job gets the 4 (dummy) GPUs and both CPUs, and requeue works."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_job_gets_gpus_and_cpus(slurm, tmp_path):
    out = tmp_path / "job.out"
    job = slurm.sbatch(
        "--gres=gpu:4", "--cpus-per-task=2", "--mem=1G", f"--output={out}",
        "--wrap", "echo GPUS=$CUDA_VISIBLE_DEVICES CPUS=$SLURM_CPUS_PER_TASK",
    )  # fmt: skip
    assert slurm.wait_finished(job, timeout=60)["JobState"] == "COMPLETED"
    assert "GPUS=0,1,2,3 CPUS=2" in out.read_text()


# A stand-in runner: counts steps in RUNS/SIZE/STAGE/step and, on USR1, "checkpoints" (keeps the count)
# and exits, as the real runner does; a rerun resumes from the count.
STUB_RUNNER = r"""#!/bin/bash
dir="$PATHVLM_RUNS/$SIZE/$2"; mkdir -p "$dir"
step=$(cat "$dir/step" 2>/dev/null || echo 0)
if ((step > 0)); then echo "stub: resumed from step $step"; fi
trap 'echo "stub: checkpoint at step $step"; exit 0' USR1
while ((step < 30)); do step=$((step + 1)); echo "$step" > "$dir/step"; sleep 0.2 & wait $!; done
echo "stub: done at step $step"
"""


def test_usr1_before_time_limit_checkpoints_and_requeues(slurm, repo_root, tmp_path):
    """What `--signal=B:USR1@600` triggers: the script forwards USR1, then requeues the job, which resumes."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export VIRTUAL_ENV={venv} PATH="{venv}/bin:$PATH"\n')
    (venv / "bin" / "pathvlm").write_text(STUB_RUNNER)
    (venv / "bin" / "pathvlm").chmod(0o755)
    (tmp_path / "logs").mkdir()
    secret = "sk-usr1-test-secret-0123456789"
    env = {"VENV": str(venv), "RUNS": str(tmp_path / "runs"), "SIZE": "3b", "OPENAI_API_KEY": secret}
    job = slurm.sbatch(
        "--cpus-per-task=1", "--mem=1G", str(repo_root / "slurm" / "sft.sbatch"), env=env, cwd=tmp_path
    )
    step = tmp_path / "runs" / "3b" / "alpha" / "step"
    slurm.wait_for(lambda: step.is_file() and int(step.read_text() or 0) >= 3, 120, "the stub's 3rd step")
    slurm.cmd("scancel", "--batch", "--signal=USR1", job)
    record = slurm.wait_finished(job, timeout=180)
    log = (tmp_path / "logs" / f"pathvlm-sft-{job}.out").read_text()
    assert record["JobState"] == "COMPLETED", log
    assert record["Restarts"] == "1"
    checkpoint = int(re.search(r"stub: checkpoint at step (\d+)", log).group(1))
    assert "USR1: time limit near" in log and f"requeueing job {job}" in log
    assert "restart 1 on" in log
    assert f"stub: resumed from step {checkpoint}" in log
    assert "stub: done at step 30" in log
    assert secret not in log
