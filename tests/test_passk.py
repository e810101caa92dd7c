"""pass@k: the unbiased estimator on hand-made counts, `pathvlm eval --samples` (tiny model), the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_eval import write_eval_file

from tools.cli import main
from tools.evaluation.eval_files import EvalFileError, validate_record
from tools.evaluation.passk import estimate, pass_at_k
from tools.evaluation.score import score
from tools.report.cli import write_report
from tools.report.load import load


def _by_combinations(n: int, c: int, k: int) -> float:
    """Chen et al.'s definition, 1 - C(n-c, k) / C(n, k), in exact integers."""
    return 1 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (8, 0, 1, 0.0),
        (8, 0, 8, 0.0),
        (8, 8, 8, 1.0),
        (8, 1, 1, 1 / 8),
        (8, 1, 2, 1 - 21 / 28),  # C(7,2) / C(8,2)
        (8, 2, 4, 1 - 15 / 70),  # C(6,4) / C(8,4)
        (8, 5, 4, 1.0),  # fewer wrong samples than k: some draw of k always holds a correct one
        (5, 2, 3, 0.9),  # C(3,3) / C(5,3) = 1/10
        (1, 1, 1, 1.0),
    ],
)
def test_pass_at_k_on_hand_made_counts(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_product_form_equals_the_binomial_definition() -> None:
    for n in range(1, 21):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_by_combinations(n, c, k), abs=1e-12), (n, c, k)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 1, 8), (0, 0, 1), (4, 5, 1), (4, -1, 1), (4, 1, 0)])
def test_impossible_counts_are_refused(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass@"):
        pass_at_k(n, c, k)


def test_estimate_leaves_out_k_above_the_samples() -> None:
    result = estimate([0, 1, 4, 2], n=4)
    assert list(result) == ["1", "2", "4"]  # pass@8 needs 8 samples: not estimated from 4
    assert result["1"]["value"] == pytest.approx((0 + 1 / 4 + 1 + 2 / 4) / 4)
    assert result["4"]["value"] == pytest.approx(3 / 4)
    low, high = result["1"]["ci"]
    assert low <= result["1"]["value"] <= high


def test_sampled_records_are_validated() -> None:
    record = {
        "id": "a",
        "subset": "PubMed",
        "prompt_sha256": "0" * 64,
        "output": "x",
        "parsed_letter": None,
        "parsed_text": None,
        "correct": False,
        "letter_correct": False,
        "output_tokens": 1,
        "format_ok": False,
    }
    good = {
        **record,
        "sample_outputs": ["x", "y"],
        "sample_correct": [False, True],
        "sample_output_tokens": [1, 1],
    }
    assert validate_record(good, "f:1") == good
    with pytest.raises(EvalFileError, match="differ in length"):
        validate_record({**good, "sample_correct": [False]}, "f:1")
    with pytest.raises(EvalFileError, match="'sample_correct' must be a non-empty list of bool"):
        validate_record({**good, "sample_correct": [0, 1]}, "f:1")
    with pytest.raises(EvalFileError, match="sample_output_tokens"):
        validate_record({k: v for k, v in good.items() if k != "sample_output_tokens"}, "f:1")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--samples", "4", "--temperature", "0"], "needs --temperature > 0"),
        (["--temperature", "1"], "pass --samples N"),
        (["--samples", "2", "--backend", "openai"], "evaluates local models"),
    ],
)
def test_sampling_flags_are_checked(tmp_path: Path, flags: list[str], message: str) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 2)
    with pytest.raises(SystemExit, match=message):
        main(["eval", "--model", "m", "--data", str(data), "--out", str(tmp_path / "o"), *flags])


def test_eval_samples_on_the_tiny_model_and_the_report(tiny_model: Path, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 3)
    runs = tmp_path / "runs"
    stage = runs / "7b" / "beta"
    stage.mkdir(parents=True)
    (stage / "model").symlink_to(tiny_model, target_is_directory=True)
    (stage / "DONE").write_text("hash\n")
    sample = ["--samples", "4", "--temperature", "1", "--max-new-tokens", "8", "--runs", str(runs)]
    assert main(["eval", "--model", str(stage / "model"), "--data", str(data), *sample]) == 0

    folder = stage / "eval" / "test-samples4-t1"  # beside the greedy folder, never in it
    records = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    answers = {item["id"]: item["answer"] for item in map(json.loads, data.read_text().splitlines())}
    for record in records:
        assert len(record["sample_outputs"]) == len(record["sample_correct"]) == 4
        assert record["output"] == record["sample_outputs"][0]
        truth = answers[record["id"]]
        assert record["sample_correct"] == [
            score(text, truth)["correct"] for text in record["sample_outputs"]
        ]
    assert len({text for r in records for text in r["sample_outputs"]}) > len(records)  # really sampled
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["samples"], summary["temperature"], summary["seed"]) == (4, 1.0, 0)
    counts = [sum(r["sample_correct"]) for r in records]
    assert list(summary["pass_at_k"]) == ["1", "2", "4"]
    for k, value in summary["pass_at_k"].items():
        assert value["value"] == pytest.approx(sum(pass_at_k(4, c, int(k)) for c in counts) / len(counts))

    # seeded: the same settings elsewhere draw the same samples
    again = tmp_path / "again"
    assert (
        main(["eval", "--model", str(stage / "model"), "--data", str(data), "--out", str(again), *sample])
        == 0
    )
    assert [json.loads(line) for line in (again / "test" / "items.jsonl").read_text().splitlines()] == records
    # greedy settings into the sampled folder are refused: the files cannot be mixed
    with pytest.raises(SystemExit, match="other settings"):
        main(
            [
                "eval",
                "--model",
                str(tiny_model),
                "--data",
                str(data),
                "--out",
                str(again),
                "--max-new-tokens",
                "8",
            ]
        )

    results = load(runs)
    assert not results  # a sampled folder is no greedy accuracy for Tables 1-3
    out = tmp_path / "report"
    write_report(results, out)
    report = (out / "report.md").read_text()
    assert "## pass@k (sampled answers)" in report
    row = next(line for line in report.splitlines() if line.startswith("| β-7B | test |"))
    assert row.startswith("| β-7B | test | 3 | 4 | 1 |") and row.endswith("| k > n |")
    assert f"{summary['pass_at_k']['4']['value'] * 100:.2f}" in row
    assert "pass@8" in (out / "passk.csv").read_text().splitlines()[0]

    # records that disagree with the summary stop the report
    lines = (folder / "items.jsonl").read_text().splitlines()
    broken = json.loads(lines[0]) | {
        "sample_outputs": ["a"],
        "sample_correct": [True],
        "sample_output_tokens": [1],
    }
    (folder / "items.jsonl").write_text("\n".join([json.dumps(broken), *lines[1:]]) + "\n")
    with pytest.raises(SystemExit, match=r"items.jsonl:1: expected 4 scored samples"):
        load(runs)
