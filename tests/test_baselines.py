"""`make baselines`: the real commands, the base model before any training, the report's baseline rows."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

from test_eval import write_eval_file
from test_report import write_eval

from tools.cli import main

REPO = Path(__file__).resolve().parents[1]


def make_n(*args: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "GEMINI_API_KEY")}
    result = subprocess.run(
        ["make", "-n", "-C", str(REPO), "baselines", *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.strip() for line in result.stdout.splitlines()]
    return [line for line in lines if "pathvlm" in line or line.startswith("echo")]


def test_make_baselines_prints_the_real_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "omnimedvqa" / "eval").mkdir(parents=True)
    (data / "omnimedvqa" / "eval" / "isic2020.jsonl").write_text("")
    lines = make_n("SIZE=7b", f"DATA={data}")
    assert lines[0].endswith(
        f"pathvlm eval-all --size 7b --profile h20x4 --base-only --data-root {data}"
    )  # the backend: the profile's eval_backend (vllm)
    assert lines[1:] == [
        'echo "OPENAI_API_KEY not set: GPT-4o skipped"',
        'echo "GEMINI_API_KEY not set: gemini-1.5-pro skipped"',
    ]

    lines = make_n("SIZE=32b", f"DATA={data}", OPENAI_API_KEY="sk-secret", GEMINI_API_KEY="g-secret")
    data_args = f"--data {data}/pathmmu/eval/test.jsonl --data {data}/omnimedvqa/eval/isic2020.jsonl"
    assert lines[0].endswith(
        "pathvlm eval --backend vllm --model Qwen/Qwen2.5-VL-32B-Instruct --size 32b "
        f"--tensor-parallel-size 4 {data_args}"
    )
    assert lines[1].endswith(f"pathvlm eval --backend openai --model gpt-4o {data_args}")
    assert (
        "--model gemini-1.5-pro --base-url https://generativelanguage.googleapis.com/v1beta/openai/"
        in lines[2]
    )
    assert "--api-key-env GEMINI_API_KEY" in lines[2]
    assert not any("secret" in line for line in lines)  # keys never on a command line


def test_base_only_before_any_training_uses_the_recipe(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    write_eval_file(data / "pathmmu" / "eval" / "test.jsonl", 2)
    runs = tmp_path / "runs"
    monkeypatch.setenv("PATHVLM_TINY_MODEL", str(tiny_model))  # the cpu profile's base model
    argv = ["eval-all", "--size", "tiny", "--profile", "cpu", "--base-only", "--runs", str(runs)]
    assert main([*argv, "--data-root", str(data), "--max-new-tokens", "4"]) == 0
    assert sorted(p.relative_to(runs).as_posix() for p in runs.glob("*/*/eval/*")) == ["tiny/base/eval/test"]


def test_report_fills_the_32b_row_without_comparing_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_eval(runs, "32b", "base", "test", [True, False, True, True])
    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    with (out / "table1_in_domain.csv").open() as handle:
        row = next(r for r in csv.DictReader(handle) if r["model"] == "Qwen2.5-VL-32B")
    assert (row["n"], row["ours"], row["paper"]) == ("4", "75.0", "54.20")
    assert "32b" not in (out / "comparisons.csv").read_text()
