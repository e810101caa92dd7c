"""EasyR1's Ray workers get the run's W&B identity (tools.train.engines.easyr1_main), and a single-node run
starts a Ray cluster of its own, not whatever cluster another job left on the node."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.train.engines.easyr1_main import SETUP_HOOK, forwarded_env, local_cluster_options, with_run_env

STUBS = Path(__file__).resolve().parent / "stubs"  # vLLM, msgspec, qwen-vl-utils stand-ins

RUN = {
    "WANDB_RUN_ID": "paper-h20x4-7b-beta-beta",
    "WANDB_RESUME": "allow",
    "WANDB_RUN_GROUP": "paper-h20x4",
    "WANDB_TAGS": "h20x4,manifest-0123456789ab",
    "WANDB_API_KEY": "not-forwarded-0123456789",
    "WANDB_SERVICE": "2-123-tcp-localhost-4567",
    "OPENAI_API_KEY": "sk-not-forwarded-0123456789",
    "PATHVLM_JUDGE_CACHE": "/shared/judge-cache",
}


def test_ray_init_gets_the_runs_wandb_variables_and_easyr1s_own() -> None:
    calls: list[dict] = []
    init = with_run_env(lambda *a, **k: calls.append(k), {**RUN, "RAY_ADDRESS": "10.0.0.1:6421"})
    init(runtime_env={"env_vars": {"NCCL_DEBUG": "WARN", "WANDB_RESUME": "never"}})  # as verl.trainer.main
    env_vars = calls[0]["runtime_env"]["env_vars"]
    assert env_vars["WANDB_RUN_ID"] == RUN["WANDB_RUN_ID"] and env_vars["WANDB_TAGS"] == RUN["WANDB_TAGS"]
    assert env_vars["NCCL_DEBUG"] == "WARN" and env_vars["WANDB_RESUME"] == "never"  # EasyR1's own win
    assert not {"WANDB_API_KEY", "WANDB_SERVICE", "OPENAI_API_KEY"} & set(env_vars)  # keys stay on each node
    assert set(calls[0]) == {"runtime_env"}  # multi-node: RAY_ADDRESS decides
    assert calls[0]["runtime_env"]["worker_process_setup_hook"] == SETUP_HOOK  # our corrections of EasyR1


OWN = {"address": "local", "include_dashboard": False, "_temp_dir": "/tmp/ray-42"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SLURM_JOB_ID": "42"}, OWN),
        ({"SLURM_JOB_ID": "42", "RAY_ADDRESS": "local"}, OWN),
        ({"RAY_ADDRESS": "10.0.0.1:6421"}, {}),
    ],
)  # fmt: skip
def test_single_node_runs_start_their_own_ray(environ: dict, expected: dict) -> None:
    assert local_cluster_options(environ) == expected
    assert "PATHVLM_JUDGE_CACHE" in forwarded_env(RUN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PROBE = """
import json, os, sys, ray
from tools.train.engines.easyr1_main import with_run_env
init = with_run_env(ray.init, dict(os.environ)) if sys.argv[1] == "patched" else ray.init
init(runtime_env={"env_vars": {"NCCL_DEBUG": "WARN"}}, logging_level="ERROR")

@ray.remote(num_cpus=0)
def probe():
    from verl.workers.actor.dp_actor import DataParallelPPOActor
    from verl.workers.rollout.vllm_rollout_spmd import vLLMRollout

    seen = {k: os.environ.get(k) for k in ("WANDB_RUN_ID", "WANDB_RUN_GROUP", "WANDB_API_KEY", "NCCL_DEBUG")}
    methods = (DataParallelPPOActor.update_policy, vLLMRollout.__init__)
    return {**seen, "corrected": [hasattr(method, "__wrapped__") for method in methods]}

print(json.dumps(ray.get(probe.remote())))
"""


@pytest.mark.slow
def test_workers_of_a_cluster_started_earlier_see_the_runs_identity(tmp_path: Path) -> None:
    """A raylet started before the runner (as `ray start` on the other nodes of grpo.sbatch) lacks the W&B
    variables: plain ray.init leaves them out of the workers, ours passes them through runtime_env, and
    runs our corrections of EasyR1's loss and rollout seed in every worker (vLLM stubbed: tests/stubs)."""
    ray = Path(sys.executable).with_name("ray")
    port, temp = _free_port(), f"/tmp/rt-{os.getpid()}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_"))}
    base["PYTHONPATH"] = f"{Path.cwd()}:{STUBS}"  # the nodes' environment (gpu: vLLM installed)
    head = subprocess.Popen(
        [str(ray), "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
         f"--temp-dir={temp}", "--disable-usage-stats", "--block"],
        env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        env = {**base, **RUN, "RAY_ADDRESS": f"127.0.0.1:{port}", "PYTHONPATH": str(Path.cwd())}
        seen = {}
        for mode in ("plain", "patched"):
            deadline = time.monotonic() + 180
            while True:
                result = subprocess.run(
                    [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=180
                )
                if result.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(2)  # the head is still starting
            assert result.returncode == 0, result.stderr[-3000:]
            seen[mode] = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["plain"]["WANDB_RUN_ID"] is None  # the defect: a new W&B run on every requeue
        assert seen["patched"]["WANDB_RUN_ID"] == RUN["WANDB_RUN_ID"]
        assert seen["patched"]["WANDB_RUN_GROUP"] == RUN["WANDB_RUN_GROUP"]
        assert seen["patched"]["WANDB_API_KEY"] is None and seen["patched"]["NCCL_DEBUG"] == "WARN"
        assert seen["plain"]["corrected"] == [False, False] and seen["patched"]["corrected"] == [True, True]
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
