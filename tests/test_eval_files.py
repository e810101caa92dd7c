"""Evaluation folders that cannot be mixed: identity, validated records, the lock (issue 15, point 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_eval import ScriptedBackend, run_eval, write_eval_file
from test_report import write_eval

from tools.cli import main
from tools.evaluation.eval_files import eval_lock, model_sha256

ANSWER = "<think>a</think><answer>A) Adenocarcinoma</answer>"


def report(runs: Path, tmp_path: Path) -> int:
    return main(["report", "--runs", str(runs), "--out", str(tmp_path / "reports"), "--no-wandb"])


def items_of(runs: Path) -> Path:
    return runs / "7b" / "beta" / "eval" / "test" / "items.jsonl"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    write_eval(runs, "7b", "beta", "test", [True] * 5 + [False] * 25)  # n = 30, 16.7 %
    return runs


def _append_foreign(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    foreign = [json.loads(lines[0]) | {"id": f"other{i}", "correct": True} for i in range(40)]
    path.write_text("".join(lines) + "".join(json.dumps(r) + "\n" for r in foreign))


def _duplicate_first(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines) + lines[0])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            _append_foreign,
            r"items\.jsonl: 70 records, summary\.json has n=30; lines 31-70 are not in the summary",
        ),
        (_duplicate_first, r"items\.jsonl:31: duplicate id 'q0'"),
        (lambda p: p.write_text(p.read_text() + '{"id": "q9'), r"items\.jsonl:31: last line is cut short"),
        (lambda p: p.write_text(p.read_text().replace("\n", "\n\n", 1)), r"items\.jsonl:2: blank line"),
        (lambda p: p.unlink(), r"items\.jsonl: missing"),
        (lambda p: (p.parent / "config.json").unlink(), r"config\.json: missing"),
        (
            lambda p: (p.parent / "config.json").write_text(json.dumps({"model": "other"})),
            r"summary\.json: settings differ from config\.json",
        ),
        (
            lambda p: p.write_text(p.read_text().replace('"q3"', '"x3"')),
            r"items\.jsonl: item ids differ from those summary\.json was computed on",
        ),
        (
            lambda p: p.write_text(p.read_text().replace('"output_tokens": 50', '"output_tokens": "50"', 1)),
            r"items\.jsonl:1: 'output_tokens' must be int, got '50'",
        ),
        (
            lambda p: (p.parent / "summary.json").write_text(
                json.dumps(
                    {
                        k: v
                        for k, v in json.loads((p.parent / "summary.json").read_text()).items()
                        if k != "ids_sha256"
                    }
                )
            ),
            r"summary\.json: written before evaluation folders had an identity",
        ),
    ],
    ids=[
        "foreign-ids",
        "duplicate",
        "torn-line",
        "blank-line",
        "no-items",
        "no-config",
        "other-config",
        "ids",
        "bad-type",
        "old-summary",
    ],
)
def test_report_refuses_mixed_folders(runs: Path, tmp_path: Path, damage, message: str) -> None:
    assert report(runs, tmp_path) == 0  # the intact folder reports
    damage(items_of(runs))
    with pytest.raises(SystemExit, match=message):
        report(runs, tmp_path)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    backend = ScriptedBackend({"Which": ANSWER})
    monkeypatch.setattr("tools.evaluation.evaluate.make_backend", lambda *a, **k: backend)
    return backend


def _interrupted(tmp_path: Path, keep: int = 2) -> tuple[Path, Path, Path]:
    """A finished scripted evaluation of 4 items cut back to ``keep`` records and no summary."""
    data = write_eval_file(tmp_path / "test.jsonl", 4)
    out = tmp_path / "out"
    assert run_eval("scripted", data, out) == 0
    items = out / "test" / "items.jsonl"
    items.write_text("".join(items.read_text().splitlines(keepends=True)[:keep]))
    (out / "test" / "summary.json").unlink()
    return data, out, items


def test_config_is_written_before_the_first_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 2)
    seen: list[bool] = []

    class Checking(ScriptedBackend):
        def generate(self, requests):
            config = json.loads((tmp_path / "out" / "test" / "config.json").read_text())
            seen.append(config["model_sha256"] == model_sha256("scripted") and config["temperature"] == 0.0)
            return super().generate(requests)

    monkeypatch.setattr("tools.evaluation.evaluate.make_backend", lambda *a, **k: Checking({"Which": ANSWER}))
    assert run_eval("scripted", data, tmp_path / "out") == 0
    assert seen == [True]


def test_resume_without_config_refuses_records_of_unknown_origin(tmp_path: Path, scripted) -> None:
    data, out, items = _interrupted(tmp_path)
    (out / "test" / "config.json").unlink()
    with pytest.raises(SystemExit, match=r"items\.jsonl: records without config\.json"):
        run_eval("scripted", data, out)


def test_resume_with_another_model_is_refused(tmp_path: Path, scripted) -> None:
    data, out, _ = _interrupted(tmp_path)
    with pytest.raises(SystemExit, match="other settings.*'model'"):
        run_eval("another-model", data, out)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json\n", r"items\.jsonl:2: not UTF-8 JSON"),
        ("\xff\xfe\n", r"items\.jsonl:2: not UTF-8 JSON"),
        ("[1, 2]\n", r"items\.jsonl:2: expected a JSON object, got list"),
        ('{"subset": "x"}\n', r"items\.jsonl:2: record lacks 'id'"),
        ("\n", r"items\.jsonl:2: blank line"),
    ],
)
def test_resume_refuses_a_bad_middle_line(tmp_path: Path, scripted, line: str, message: str) -> None:
    data, out, items = _interrupted(tmp_path, keep=3)
    lines = items.read_text().splitlines(keepends=True)
    items.write_text(lines[0] + line + lines[2])
    with pytest.raises(SystemExit, match=message):
        run_eval("scripted", data, out)
    assert items.read_text() == lines[0] + line + lines[2]  # nothing truncated


def test_resume_refuses_foreign_and_duplicate_ids(tmp_path: Path, scripted) -> None:
    data, out, items = _interrupted(tmp_path)
    lines = items.read_text().splitlines(keepends=True)
    items.write_text(lines[0] + lines[1].replace('"test-1"', '"elsewhere-7"'))
    with pytest.raises(SystemExit, match=r"items\.jsonl:2: id 'elsewhere-7' is not in .*test\.jsonl"):
        run_eval("scripted", data, out)
    items.write_text(lines[0] + lines[0])
    with pytest.raises(SystemExit, match=r"items\.jsonl:2: duplicate id 'test-0'"):
        run_eval("scripted", data, out)


def test_resume_repairs_a_torn_last_line_with_a_message(
    tmp_path: Path, scripted, capsys: pytest.CaptureFixture
) -> None:
    data, out, items = _interrupted(tmp_path)
    items.write_text(items.read_text() + '{"id": "test-2", "sub')
    assert run_eval("scripted", data, out) == 0
    assert "items.jsonl:3: dropped the half-written last line" in capsys.readouterr().err
    assert [json.loads(line)["id"] for line in items.read_text().splitlines()] == [
        f"test-{i}" for i in range(4)
    ]


def test_a_second_evaluation_is_locked_out(tmp_path: Path, scripted) -> None:
    data, out, items = _interrupted(tmp_path)
    with eval_lock(out / "test"):
        with pytest.raises(SystemExit, match=r"another evaluation is writing here \(pid \d+"):
            run_eval("scripted", data, out)
    assert len(items.read_text().splitlines()) == 2
    assert run_eval("scripted", data, out) == 0  # released
    assert len(items.read_text().splitlines()) == 4


def test_model_hash_follows_the_files(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "weights.bin").write_bytes(b"\0" * (17 << 20))
    first = model_sha256(str(model))
    assert model_sha256(str(model)) == first
    with (model / "weights.bin").open("r+b") as handle:
        handle.seek((17 << 20) - 5)
        handle.write(b"\1")
    assert model_sha256(str(model)) != first
    assert model_sha256("gpt-4o") != model_sha256("gpt-4o-mini")
