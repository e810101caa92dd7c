"""The test cluster itself: a job gets the 4 (dummy) GPUs and both CPUs, and requeue works."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

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
    _real_python(venv)
    (tmp_path / "logs").mkdir()
    secret = "sk-usr1-test-secret-0123456789"
    env = {"VENV": str(venv), "RUNS": str(tmp_path / "runs"), "SIZE": "3b", "OPENAI_API_KEY": secret}
    job = slurm.sbatch(
        "--gres=gpu:4", "--cpus-per-task=1", "--mem=1G", str(repo_root / "slurm" / "sft.sbatch"), env=env,
        cwd=tmp_path,
    )  # fmt: skip
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


# A stand-in for `pathvlm`: `run` and `eval-all` record their arguments and succeed at once; `judge-server`
# is the real fake judge (standing in for `vllm serve` in slurm/judge.sbatch).
STUB_PATHVLM = r"""#!/bin/bash
case "$1" in
    judge-server) exec "$REAL_PATHVLM" "$@" ;;
    *) mkdir -p "$PATHVLM_RUNS" && echo "$*" >> "$PATHVLM_RUNS/calls.log"
       key=${PATHVLM_LOCAL_JUDGE_KEY:-}
       if [[ -n "$key" ]]; then echo "$2 $key" >> "$PATHVLM_RUNS/keys.log"; fi ;;
esac
"""


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else f"(no log {path})"


def _real_python(venv: Path) -> None:
    """``python`` in a stand-in environment: the test environment's (the jobs read the profile with it)."""
    (venv / "bin" / "python").write_text(f'#!/bin/bash\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)


def _stub_venv(tmp_path, real_bin):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export VIRTUAL_ENV={venv} PATH="{venv}/bin:$PATH"\n')
    (venv / "bin" / "pathvlm").write_text(STUB_PATHVLM)
    (venv / "bin" / "pathvlm").chmod(0o755)
    _real_python(venv)
    return venv


def test_pipeline_local_judge_serves_r1_and_stops(slurm, repo_root, tmp_path):
    real_bin = Path(sys.executable).parent
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "sk-local-judge-secret-0123456789"
    (tmp_path / "logs").mkdir()
    runs = tmp_path / "runs"
    env = {
        "VENV": str(_stub_venv(tmp_path, real_bin)),
        "REAL_PATHVLM": str(real_bin / "pathvlm"),
        "RUNS": str(runs),
        "SIZE": "3b",
        "PROFILE": "cpu",
        "OPENAI_API_KEY": secret,
        "PATHVLM_JUDGE_PORT": str(port),
        "PATHVLM_JUDGE_HOST": "127.0.0.1",
        "PATHVLM_JUDGE_WAIT_S": "120",
    }
    output = f"--output={tmp_path}/logs/%x-%j.out"
    opts = ["--cpus-per-task=1", "--mem=1G", "--gres=gpu:0", output]  # judge and r1 side by side on 2 CPUs
    result = slurm.cmd(
        str(repo_root / "slurm" / "pipeline.sh"), "--local-judge", "--", *opts, env=env, cwd=tmp_path
    )
    ids = dict(line.split() for line in result.stdout.splitlines())
    assert list(ids) == ["alpha", "beta", "judge", "r1", "judge-stop", "eval"]
    assert slurm.job(ids["judge"])["Dependency"] in (f"afterok:{ids['beta']}(unfulfilled)", "(null)")
    final = {name: slurm.wait_finished(job, timeout=300)["JobState"] for name, job in ids.items()}
    logs = {name: _read(Path(slurm.job(job)["StdOut"])) for name, job in ids.items()}
    assert final == {
        "alpha": "COMPLETED",
        "beta": "COMPLETED",
        "judge": "CANCELLED",  # stopped by judge-stop once r1 ended
        "r1": "COMPLETED",
        "judge-stop": "COMPLETED",
        "eval": "COMPLETED",
    }, logs
    url = f"http://127.0.0.1:{port}/v1"
    assert f"judge: {url}/models answers" in logs["judge"] and f"judge: {url}/models answers" in logs["r1"]
    r1_run = next(line for line in (runs / "calls.log").read_text().splitlines() if line.startswith("run r1"))
    judge = "easyr1.worker.reward.reward_function_kwargs.judge"
    assert f"--set {judge}.base_url={url} --set {judge}.model=fake-judge" in r1_run
    assert (
        f"--set {judge}.api_key_env=PATHVLM_LOCAL_JUDGE_KEY" in r1_run
    )  # the OpenAI key is never sent there
    assert not (runs / "3b" / "judge" / "server").exists()  # removed when the judge job ended
    assert all(secret not in log for log in logs.values())
    # r1 (only r1) got the judge job's key, which the server required (the health checks sent it); no log
    # shows it
    (stage, key), *more = [line.split() for line in (runs / "keys.log").read_text().splitlines()]
    assert stage == "r1" and len(key) == 64 and not more
    assert all(key not in log for log in logs.values())
    assert not (runs / "3b" / "judge" / "key").exists()


def test_r1_without_its_judge_fails_clearly(slurm, repo_root, tmp_path):
    (tmp_path / "logs").mkdir()
    env = {
        "VENV": str(_stub_venv(tmp_path, Path(sys.executable).parent)),
        "RUNS": str(tmp_path / "runs"),
        "SIZE": "3b",
        "PROFILE": "cpu",
        "PATHVLM_JUDGE_DIR": str(tmp_path / "runs" / "3b" / "judge"),
        "PATHVLM_JUDGE_WAIT_S": "4",
    }
    job = slurm.sbatch(
        "--cpus-per-task=1", "--mem=1G", "--gres=gpu:0", str(repo_root / "slurm" / "grpo.sbatch"), "r1",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert slurm.wait_finished(job, timeout=120)["JobState"] == "FAILED"
    log = (tmp_path / "logs" / f"pathvlm-grpo-{job}.out").read_text()
    assert f"ERROR: judge: no server file {tmp_path}/runs/3b/judge/server within 4s" in log
    assert not (tmp_path / "runs" / "calls.log").exists()  # r1 never started


OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "WANDB_MODE")
# A stand-in runner that prints what a real one would read of the offline settings.
OFFLINE_PATHVLM = "#!/bin/bash\n" + "".join(f'echo "stub: {n}=${{{n}:-unset}}"\n' for n in OFFLINE)


def test_a_job_sets_the_offline_defaults_itself(slurm, repo_root, tmp_path):
    """tests/conftest.py sets the offline variables for every test; a user's login shell does not. Submitted
    with none of them (nor a W&B key), the job sets them; WANDB_MODE=online without a key stops it."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export VIRTUAL_ENV={venv} PATH="{venv}/bin:$PATH"\n')
    (venv / "bin" / "pathvlm").write_text(OFFLINE_PATHVLM)
    (venv / "bin" / "pathvlm").chmod(0o755)
    _real_python(venv)
    (tmp_path / "logs").mkdir()
    bare = {k: v for k, v in slurm.env.items() if k not in (*OFFLINE, "WANDB_API_KEY", "NETRC")}
    bare.update(VENV=str(venv), RUNS=str(tmp_path / "runs"), SIZE="3b", PROFILE="cpu", HOME=str(tmp_path))
    script = str(repo_root / "slurm" / "sft.sbatch")

    def submit(**env: str) -> tuple[str, str]:
        result = subprocess.run(
            ["sbatch", "--parsable", "--cpus-per-task=1", "--mem=1G", "--gres=gpu:0", script],
            env={**bare, **env}, cwd=tmp_path, capture_output=True, text=True, check=True,
        )  # fmt: skip
        job = result.stdout.strip().split(";")[0]
        state = slurm.wait_finished(job, timeout=120)["JobState"]
        return state, (tmp_path / "logs" / f"pathvlm-sft-{job}.out").read_text()

    state, log = submit()
    assert state == "COMPLETED", log
    for line in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "HF_DATASETS_OFFLINE=1", "WANDB_MODE=offline"):
        assert f"stub: {line}" in log, log
    state, log = submit(WANDB_MODE="online")
    assert state == "FAILED", log
    assert "ERROR: WANDB_MODE=online but no W&B key" in log and "stub:" not in log
