"""`pathvlm judge-eval` and the report's "reasoning quality (judged)" table, against the fake judge."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_eval import ScriptedBackend, read_jsonl, run_eval, write_eval_file

from tools.cli import main
from tools.dev.judge_server import JudgeServer
from tools.report.paper import model_label

# The fake judge: -0.4 integrity per missing reasoning step (image / options / knowledge keywords).
OUTPUTS = {
    "r1": "<think>The image shows cells; other options excluded because typical.</think>"
    "<answer>A) Adenocarcinoma</answer>",  # all three steps: integrity 1, knowledge 1
    "beta": "<think>a</think><answer>A) Adenocarcinoma</answer>",  # no step: integrity 0, knowledge 1
    "alpha": "A) Adenocarcinoma",  # fails the format check: 0 without a call
}
N = 6


@pytest.fixture
def judged_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = write_eval_file(tmp_path / "test.jsonl", N)
    runs = tmp_path / "runs"
    for stage, output in OUTPUTS.items():
        backend = ScriptedBackend({"Which": output})
        monkeypatch.setattr("tools.evaluation.evaluate.make_backend", lambda *a, b=backend, **k: b)
        assert run_eval(f"model-{stage}", data, runs / "tiny" / stage / "eval") == 0
    monkeypatch.setenv("PATHVLM_JUDGE_CACHE", str(tmp_path / "judge-cache"))
    with JudgeServer() as server:
        monkeypatch.setenv("PATHVLM_JUDGE_PORT", str(server.port))
        yield runs, server


def judge_eval(runs: Path, *extra: str) -> int:
    return main(["judge-eval", "--size", "tiny", "--profile", "cpu", "--runs", str(runs), *extra])


def test_judge_eval_scores_every_output_beside_items(judged_runs) -> None:
    runs, server = judged_runs
    assert judge_eval(runs) == 0
    expected = {"r1": (1.0, 1.0, True), "beta": (0.0, 1.0, True), "alpha": (0.0, 0.0, False)}
    for stage, (integrity, knowledge, sent) in expected.items():
        folder = runs / "tiny" / stage / "eval" / "test"
        rows = read_jsonl(folder / "judged.jsonl")
        assert [r["id"] for r in rows] == [r["id"] for r in read_jsonl(folder / "items.jsonl")]
        assert {(r["integrity"], r["knowledge"], r["process"], r["sent"]) for r in rows} == {
            (integrity, knowledge, (integrity + knowledge) / 2, sent)
        }
        summary = json.loads((folder / "judged_summary.json").read_text())
        assert summary["process"] == (integrity + knowledge) / 2 and summary["n"] == N
        assert summary["judge"]["prompt_version"] == "judge_v2" and summary["judge"]["temperature"] == 0.0
    assert server.stats["requests"] == 2 * N  # format failures are never sent

    assert judge_eval(runs) == 0  # judged by the same judge: skipped
    assert server.stats["requests"] == 2 * N

    out = runs.parent / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    report = (out / "report.md").read_text()
    assert "## Reasoning quality (judged)" in report
    with (out / "reasoning_tests.csv").open() as handle:
        tests = {(t["a"], t["b"]): t for t in csv.DictReader(handle)}
    # 6 pairs, all differing in the same direction: exact two-sided p = 2 / 2**6.
    r1, beta, alpha = (model_label("tiny", stage) for stage in ("r1", "beta", "alpha"))
    assert float(tests[(r1, beta)]["p_value"]) == pytest.approx(2 / 64)
    assert float(tests[(r1, beta)]["mean_diff"]) == pytest.approx(0.5)
    assert float(tests[(beta, alpha)]["mean_diff"]) == pytest.approx(0.5)
    with (out / "reasoning_judged.csv").open() as handle:
        rows = {r["model"]: r for r in csv.DictReader(handle)}
    assert r1 == "tiny (stands in for PathVLM-R1)" and rows[r1]["avg_output_tokens"]
    assert rows[r1]["paper_output_tokens"] == ""  # a stand-in is never compared with the paper


def test_unreachable_judge_writes_nothing(judged_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    runs, _ = judged_runs
    monkeypatch.setenv("PATHVLM_JUDGE_PORT", "9")  # nothing listens on the discard port
    no_retry = "easyr1.worker.reward.reward_function_kwargs.judge.max_retries=0"
    assert judge_eval(runs, "--set", no_retry) == 1
    judged = sorted(p.relative_to(runs).parts[1] for p in runs.glob("*/*/eval/test/judged*"))
    assert judged == ["alpha", "alpha"]  # alpha's outputs all fail the format check: no call needed


def test_report_refuses_judged_files_of_other_items(judged_runs) -> None:
    runs, _ = judged_runs
    assert judge_eval(runs) == 0
    path = runs / "tiny" / "beta" / "eval" / "test" / "judged.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines) + lines[0])
    out = runs.parent / "reports"
    with pytest.raises(SystemExit, match=r"judged\.jsonl:7: duplicate id"):
        main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
