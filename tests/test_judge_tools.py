"""`pathvlm judge estimate` / `pathvlm judge agree`, and the runner's estimate line before r1."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rewards.judge import reset_judges
from tools.cli import main as cli_main
from tools.dev.judge_server import FakeJudgeConfig, JudgeServer
from tools.recipe.compose import compose, to_container
from tools.recipe.run import Run
from tools.train import runner
from tools.train.judge_estimate import image_tokens

JUDGE = "easyr1.worker.reward.reward_function_kwargs.judge"


def _numbers(line: str) -> dict[str, float]:
    calls = re.search(r"up to ([\d,]+) calls", line).group(1)
    text, image = re.search(r"\((\d+) text \+ (\d+) image per call", line).groups()
    prompt = re.search(r"([\d,]+) prompt tokens", line).group(1)
    completion = re.search(r"up to ([\d,]+) completion tokens", line).group(1)
    usd = re.search(r"~\$([\d,.]+) at", line).group(1)
    return {
        "calls": int(calls.replace(",", "")),
        "text": int(text),
        "image": int(image),
        "prompt": int(prompt.replace(",", "")),
        "completion": int(completion.replace(",", "")),
        "usd": float(usd.replace(",", "")),
    }


@pytest.mark.parametrize(
    ("model", "max_pixels", "expected"),
    [
        ("gpt-4o", 401408, 85 + 170 * 4),  # 633 px square: 2 x 2 tiles of 512
        ("gpt-4o", 512 * 512, 85 + 170),
        ("gpt-4o-mini", 2048 * 2048, 85 + 170 * 4),  # short side 768 -> 2 x 2 tiles
        ("Qwen/Qwen2.5-VL-72B-Instruct-AWQ", 401408, 512),  # one token per 28 x 28 patch
    ],
)
def test_image_tokens(model: str, max_pixels: int, expected: int) -> None:
    assert image_tokens(model, max_pixels) == expected


def test_estimate_counts_calls_tokens_and_usd(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["judge", "estimate", "r1", "--size", "7b"]) == 0
    got = _numbers(capsys.readouterr().out)
    assert got["calls"] == 500 * 4 * 4  # paper budget: max_steps x rollout_batch_size x n
    assert got["image"] == 765  # gpt-4o at max_pixels 401408
    assert got["text"] > 1024  # the prompt template plus a 1024-token output at 4 characters a token
    assert got["prompt"] == got["calls"] * (got["text"] + got["image"])
    assert got["completion"] == got["calls"] * 512  # max_tokens
    assert got["usd"] == pytest.approx(got["prompt"] * 2.5e-6 + got["completion"] * 10e-6, abs=0.01)

    local = [f"{JUDGE}.model=Qwen/Qwen2.5-VL-72B-Instruct-AWQ", f"{JUDGE}.prompt_usd_per_mtok=0"]
    local.append(f"{JUDGE}.completion_usd_per_mtok=0")
    assert cli_main(["judge", "estimate", "r1", "--set", *local, "--response-tokens", "100"]) == 0
    got_local = _numbers(capsys.readouterr().out)
    assert (got_local["image"], got_local["usd"]) == (512, 0.0)
    assert got_local["text"] < got["text"] - 800


def test_estimate_budget_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["judge", "estimate", "r1", "--max-usd", "10"]) == 1
    assert "over --max-usd" in capsys.readouterr().err
    assert cli_main(["judge", "estimate", "r1", "--budget", "fast"]) == 0
    assert "(250 steps x 8 prompts x 4 rollouts)" in capsys.readouterr().out  # the same 8,000 calls
    assert cli_main(["judge", "estimate", "r1", "--max-usd", "100000"]) == 0
    assert cli_main(["judge", "estimate", "beta"]) == 2
    assert "has no judge" in capsys.readouterr().err
    for command in (["judge", "estimate", "--help"], ["judge", "agree", "--help"]):
        with pytest.raises(SystemExit) as info:
            cli_main(command)
        assert info.value.code == 0


def test_the_runner_prints_the_estimate_before_r1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = types.SimpleNamespace(
        name="stub",
        config_name="config.yaml",
        launch_env=(),
        finished=lambda: False,
        trained_steps=lambda: 1,
        resume=lambda: None,
        command=lambda: ["true"],
        export=lambda model_dir=None: None,
        stop_handlers=lambda: {},
    )
    monkeypatch.setattr(runner, "run_logged", lambda *args, **kwargs: 0)
    monkeypatch.setattr(runner, "announce_overlong", lambda cfg, env: None)  # counts prompts of real data
    monkeypatch.setattr(runner, "check_judge", lambda cfg, name: None)  # calls GPT-4o (test_judge_check.py)
    monkeypatch.setattr(runner, "_selected_model", lambda plan: None)  # no validation split here
    cfg = to_container(compose("r1", "7b", "h20x4"))
    plan = runner.Plan("r1", "h20x4", Run(tmp_path, "7b", "r1"), cfg, "0" * 64, engine, {}, [])
    runner.execute(plan)
    out = capsys.readouterr().out
    assert cli_main(["judge", "estimate", "r1", "--size", "7b"]) == 0
    line = capsys.readouterr().out.strip()
    assert line in out.splitlines()
    assert out.index(line) < out.index("$ true")


# ------------------------------------------------------------------------------------------ agree


@pytest.fixture
def rollouts(tmp_path: Path) -> Path:
    image = tmp_path / "slide.png"
    Image.new("RGB", (16, 16), (120, 60, 180)).save(image)
    thinks = [
        "The image shows glandular cells; option A is excluded because it is typical.",
        "The cells look malignant.",
        "Option B is excluded.",
        "The stain shows nuclei; option A excluded, this contradicts an outdated view.",
        "Adenocarcinoma.",
        "The morphology is typical; option D is ruled out because it is known.",
    ]
    answer = {
        "ground_truth": "C) Adenocarcinoma",
        "question": "What is shown?",
        "options": ["A) Lymphoma", "B) Melanoma", "C) Adenocarcinoma", "D) Sarcoma"],
        "image": str(image),
    }
    rows = [
        {
            "response": f"<think>{think}</think><answer>C) Adenocarcinoma</answer>",
            "ground_truth": json.dumps(answer),
        }
        for think in thinks
    ]
    rows.append({"response": "no tags", "ground_truth": json.dumps(answer)})  # format fails: skipped
    path = tmp_path / "rollouts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_agree_between_two_identical_judges(
    rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_judges()
    with JudgeServer() as first, JudgeServer(FakeJudgeConfig(malformed_rate=0.0)) as second:
        out = tmp_path / "agree.json"
        command = ["judge", "agree", "--a", f"{first.url}:fake-a", "--b", f"{second.url}:fake-b"]
        command += ["--responses", str(rollouts), "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
        assert cli_main(command) == 0
        assert (first.stats["requests"], second.stats["requests"]) == (6, 6)
    report = json.loads(out.read_text())
    assert (report["responses"], report["compared"], report["failed_a"]) == (6, 6, 0)
    stats = report["statistics"]
    for name in ("integrity", "process"):
        assert stats[f"{name}_spearman"]["value"] == pytest.approx(1.0)
        assert stats[f"{name}_pearson"]["value"] == pytest.approx(1.0)
        assert stats[f"{name}_mad"]["value"] == 0.0
    assert stats["process_ge_0.5_agreement"] == {"value": 1.0, "ci95": [1.0, 1.0]}
    assert "process_ge_0.5_agreement" in capsys.readouterr().out
    reset_judges()


def test_agree_reports_disagreement_and_failures(rollouts: Path, tmp_path: Path) -> None:
    from tools.evaluation import judge_agree

    reset_judges()
    items = judge_agree.load_responses(rollouts, None)
    with JudgeServer() as good, JudgeServer(FakeJudgeConfig(malformed_rate=1.0)) as broken:
        spec_a, spec_b = (
            judge_agree.JudgeSpec.parse(f"{good.url}:a"),
            judge_agree.JudgeSpec.parse(f"{broken.url}:b"),
        )
        with pytest.raises(ValueError, match="only 0 responses judged by both"):
            judge_agree.run_agreement(spec_a, spec_b, items, 200, {"cache_dir": None, "max_retries": 0})
    a = np.array([[1.0, 1.0, 1.0], [0.6, 1.0, 0.8], [0.2, 0.6, 0.4], [0.0, 0.2, 0.1]])
    b = np.array([[0.6, 1.0, 0.8], [1.0, 1.0, 1.0], [0.2, 0.2, 0.2], [0.2, 0.2, 0.2]])
    stats = judge_agree.agreement(a, b, resamples=200)
    assert stats["integrity_mad"]["value"] == pytest.approx((0.4 + 0.4 + 0 + 0.2) / 4)
    assert stats["process_ge_0.5_agreement"]["value"] == 1.0
    low, high = stats["process_pearson"]["ci95"]
    assert low <= stats["process_pearson"]["value"] <= high
    with pytest.raises(ValueError, match="expected BASE_URL:MODEL"):
        judge_agree.JudgeSpec.parse("gpt-4o")
    reset_judges()


def test_agree_reads_an_eval_items_file_with_its_data(tmp_path: Path) -> None:
    from tools.evaluation import judge_agree

    Image.new("RGB", (16, 16), (10, 60, 180)).save(tmp_path / "a.png")
    options = ["A) Lymphoma", "B) Adenocarcinoma"]
    data = [{"id": f"q{i}", "subset": "PubMed", "image": "a.png", "question": "What?", "options": options,
             "answer": "B) Adenocarcinoma"} for i in range(3)]  # fmt: skip
    outputs = [
        "<think>The cells; option A excluded.</think><answer>B) Adenocarcinoma</answer>",
        "<think>Lymphoid.</think><answer>A) Lymphoma</answer>",
        "B) Adenocarcinoma",  # no tags: skipped
    ]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in data))
    items_file = tmp_path / "items.jsonl"
    items_file.write_text(
        "".join(json.dumps({"id": f"q{i}", "output": o}) + "\n" for i, o in enumerate(outputs))
    )
    items = judge_agree.load_responses(items_file, tmp_path / "test.jsonl")
    assert [(item.correct, item.image) for item in items] == [
        (True, str(tmp_path / "a.png")),
        (False, str(tmp_path / "a.png")),
    ]
    assert items[0].options == tuple(options) and items[0].ground_truth == "B) Adenocarcinoma"
    with pytest.raises(ValueError, match="needs --data"):
        judge_agree.load_responses(items_file, None)
    items_file.write_text(json.dumps({"id": "nope", "output": outputs[0]}) + "\n")
    with pytest.raises(ValueError, match="id 'nope' is not in"):
        judge_agree.load_responses(items_file, tmp_path / "test.jsonl")
