"""`pathvlm eval --backend openai` against the fake server: prompt, answers, key, retries, resume, usage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_eval import read_jsonl, write_eval_file

from tools.cli import main
from tools.common.prompt import build_prompt
from tools.dev.judge_server import JudgeServer, fake_answer
from tools.evaluation.eval_files import model_sha256


@pytest.fixture
def server():
    with JudgeServer() as running:
        yield running


def api_eval(server: JudgeServer, data: Path, out: Path | None, *extra: str, runs: Path | None = None) -> int:
    argv = [
        "eval",
        "--backend",
        "openai",
        "--model",
        "fake-vlm",
        "--base-url",
        server.url,
        "--data",
        str(data),
    ]
    argv += ["--out", str(out)] if out is not None else ["--runs", str(runs)]
    return main([*argv, "--max-retries", "1", *extra])


def with_question(data: Path, index: int, question: str) -> None:
    rows = read_jsonl(data)
    rows[index]["question"] = question
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_api_model_answers_with_the_shared_prompt_and_parser(
    server: JudgeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATHVLM_TEST_KEY", "sk-test-123")
    data = write_eval_file(tmp_path / "test.jsonl", 6)
    runs = tmp_path / "runs"
    settings = ("--api-key-env", "PATHVLM_TEST_KEY", "--max-new-tokens", "64")
    assert api_eval(server, data, None, *settings, runs=runs) == 0

    out = runs / "api" / "fake-vlm" / "eval" / "test"  # where the report finds it
    items = {r["id"]: r for r in read_jsonl(out / "items.jsonl")}
    rows = {r["id"]: r for r in read_jsonl(data)}
    assert len(items) == 6
    for id_, record in items.items():
        prompt = build_prompt(rows[id_]["question"], rows[id_]["options"])
        assert record["output"] == fake_answer(prompt)
        assert record["format_ok"] is True
        assert record["correct"] == (record["output"].endswith(f"<answer>{rows[id_]['answer']}</answer>"))
    bodies = list(server.judge.bodies)
    assert {b["temperature"] for b in bodies} == {0.0} and {b["max_tokens"] for b in bodies} == {64}
    content = bodies[0]["messages"][-1]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert server.judge.authorizations == {"Bearer sk-test-123": 6}
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert summary["api_usage"]["calls"] == 6 and summary["api_usage"]["failures"] == {}
    # output_tokens is the endpoint's completion_tokens (the fake server bills len(text) // 4)
    assert all(r["output_tokens"] == len(r["output"]) // 4 for r in items.values())
    assert config["model_sha256"] == model_sha256("openai:fake-vlm")
    assert "sk-test-123" not in (out / "config.json").read_text() + (out / "summary.json").read_text()

    assert api_eval(server, data, None, *settings, runs=runs) == 0
    assert server.stats["requests"] == 6  # up to date: nothing asked again


def test_retries_and_cost(server: JudgeServer, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 3)
    with_question(data, 0, "Which diagnosis fits? [[fault:500x1]]")
    prices = ("--usd-per-mtok-prompt", "2.5", "--usd-per-mtok-completion", "10")
    assert api_eval(server, data, tmp_path / "out", *prices) == 0
    usage = json.loads((tmp_path / "out" / "test" / "summary.json").read_text())["api_usage"]
    assert (usage["calls"], usage["retries"]) == (4, 1)
    expected = (usage["prompt_tokens"] * 2.5 + usage["completion_tokens"] * 10) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected) and usage["cost_usd"] > 0


def test_unanswered_items_stop_the_run_and_resume(server: JudgeServer, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 4)
    with_question(data, 2, "Which diagnosis fits? [[fault:500x2]]")
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"1 item\(s\) got no reply \(e\.g\. 'test-2'; \{'http_500': 1\}\)"):
        api_eval(server, data, out)
    assert sorted(r["id"] for r in read_jsonl(out / "test" / "items.jsonl")) == ["test-0", "test-1", "test-3"]
    assert not (out / "test" / "summary.json").exists()
    before = server.stats["requests"]
    assert api_eval(server, data, out) == 0  # the fault budget is spent: only test-2 is asked again
    assert server.stats["requests"] == before + 1
    assert len(read_jsonl(out / "test" / "items.jsonl")) == 4


def test_api_refuses_credentials_in_the_url_and_pixel_limits(server: JudgeServer, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 1)
    argv = ["eval", "--backend", "openai", "--model", "m", "--data", str(data), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="--base-url carries a credential"):
        main([*argv, "--base-url", "https://api.example.com/v1?api_key=sk-1"])
    with pytest.raises(SystemExit, match="--max-pixels / --min-pixels do not apply"):
        main([*argv, "--base-url", server.url, "--max-pixels", "1000"])


def test_report_fills_the_api_model_rows(server: JudgeServer, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 5)
    runs = tmp_path / "runs"
    for model in ("gemini-1.5-pro", "gpt-4o"):
        argv = ["eval", "--backend", "openai", "--model", model, "--base-url", server.url]
        assert main([*argv, "--data", str(data), "--runs", str(runs)]) == 0
    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    with (out / "table1_in_domain.csv").open() as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert (rows["Gemini-1.5-Pro"]["n"], rows["Gemini-1.5-Pro"]["paper"]) == ("5", "58.40")
    assert rows["Gemini-1.5-Pro"]["diff"] != ""
    assert rows["GPT-4o"]["n"] == "5" and rows["GPT-4o"]["paper"] == ""  # not in the paper: appended
    assert "api" not in (out / "comparisons.csv").read_text()
