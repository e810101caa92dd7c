"""`make preflight` / `pathvlm preflight`: the cluster path in minutes, in a throw-away runs folder.

`PROFILE=cpu` runs every check for real (CPU engines, tiny model, fake judge); `make -n preflight` on a GPU
profile shows the GPU checks; a failed check fails the run and skips what needs it, with a table either way.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tools import preflight

REPO = Path(__file__).resolve().parent.parent


def test_make_n_preflight_shows_the_gpu_checks(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        ["make", "-n", "preflight", "SIZE=7b", "PROFILE=h20x4", f"PREFLIGHT_DIR={tmp_path / 'pf'}"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "preflight --size 7b --profile h20x4" in out and "--dry-run" in out
    for line in (
        "# host: python tools/gpu_host_check.py",
        "# models: Qwen/Qwen2.5-VL-7B-Instruct in $HF_HOME",
        "# judge: pathvlm judge check r1 --size 7b --profile h20x4",
        "# sft: pathvlm run alpha --size 7b --profile h20x4 --set llamafactory.max_steps=2",
        "# sft: LLaMA-Factory, DeepSpeed recipes/deepspeed/zero3.json, a save, the export",
        "# grpo: pathvlm run r1 --size 7b --profile h20x4 --set easyr1.trainer.max_steps=2",
        "# grpo: EasyR1 (Ray, FSDP, vLLM rollout): stopped by SIGUSR1 after its first checkpoint",
        "# eval: pathvlm eval --backend vllm --size 7b",
    ):
        assert line in out, out
    assert f"PATHVLM_RUNS={tmp_path / 'pf' / 'runs'}" in out and not (tmp_path / "pf").exists()


def test_a_failed_check_fails_the_run_and_skips_what_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = {name: (lambda _pre: "ok", needs) for name, (_, needs) in preflight.CHECKS.items()}
    checks["judge"] = (lambda _pre: "FAIL: judge: OPENAI_API_KEY is not set", ())
    monkeypatch.setattr(preflight, "CHECKS", checks)
    pre = preflight.Preflight("tiny", "cpu", tmp_path / "pf", preflight.environment(tmp_path / "pf"))
    assert preflight.run(pre) == 1
    table = capsys.readouterr().out
    assert "FAIL: judge: OPENAI_API_KEY is not set" in table and "skip: needs judge" in table
    assert [r.result for r in pre.results if r.check in ("sft", "grpo", "eval")] == [
        "ok", "skip: needs judge", "skip: needs grpo"
    ]  # fmt: skip
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("not ours")
    with pytest.raises(SystemExit, match="not a preflight folder"):
        preflight.prepare(tmp_path / "other")


def test_wandb_online_without_a_key_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    pre = preflight.Preflight("tiny", "cpu", Path("unused"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")
    assert preflight.check_wandb(pre).startswith("FAIL: WANDB_MODE online and WANDB_API_KEY unset")
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert preflight.check_wandb(pre) == "ok: WANDB_MODE offline, WANDB_API_KEY unset"


@pytest.mark.slow
def test_make_preflight_cpu_runs_every_check(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PATHVLM_TINY_MODEL": str(tmp_path / "tiny"),
        "WANDB_MODE": "offline",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("WANDB_SERVICE", None)
    result = subprocess.run(
        ["make", "preflight", "PROFILE=cpu", f"PREFLIGHT_DIR={tmp_path / 'pf'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("check "))  # the table's first line
    rows = {line.split()[0]: line for line in lines[header + 1 : header + 1 + len(preflight.CHECKS)]}
    assert list(rows) == list(preflight.CHECKS), result.stdout[-3000:]
    assert "skip: cpu profile" in rows["host"] and "WANDB_MODE offline" in rows["wandb"]
    assert "judge 'gpt-4o' at http://127.0.0.1:" in rows["judge"] and "answered in" in rows["judge"]
    assert "ok: 2 steps, saved, exported" in rows["sft"]
    assert "ok: stopped at checkpoint-1, resumed, finished, merged" in rows["grpo"]
    assert "ok: 8 items" in rows["eval"] and str(tmp_path / "pf" / "logs" / "eval.log") in rows["eval"]
    runs = tmp_path / "pf" / "runs" / "tiny"
    assert (runs / "alpha" / "DONE").is_file() and (runs / "r1" / "DONE").is_file()
    assert "resuming from" in (tmp_path / "pf" / "logs" / "grpo.log").read_text()
