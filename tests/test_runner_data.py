"""The stage runner uses only data whose files are the ones the manifest lists (sha256 per file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.cli import main


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tools.data.pathmmu import convert_pathmmu
    from tools.data.synth import write_synthetic_pathmmu

    out = tmp_path / "data" / "pathmmu"
    convert_pathmmu(write_synthetic_pathmmu(tmp_path / "src", 24), out, sizes=(8, 8))
    monkeypatch.setenv("PATHVLM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PATHVLM_RUNS", str(tmp_path / "runs"))
    return out


def _mix(out: Path) -> None:
    """What an interrupted conversion with another seed used to leave: a new sft.json, the old manifest."""
    rows = json.loads((out / "llamafactory" / "sft.json").read_text())
    (out / "llamafactory" / "sft.json").write_text(json.dumps(rows[::-1]))


@pytest.mark.parametrize("stage", ["alpha", "epsilon"])
def test_runner_refuses_data_that_differs_from_its_manifest(data: Path, stage: str, capsys) -> None:
    args = ["run", stage, "--size", "7b", "--profile", "h20x4"]
    assert main([*args, "--dry-run"]) == 0
    assert "is not what its manifest lists" not in capsys.readouterr().out
    _mix(data) if stage == "alpha" else (data / "easyr1" / "rl.jsonl").write_text("")
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"# note: the data in {data} is not what its manifest lists:" in out
    assert f"pathvlm data check {data}" in out
    assert main(args) == 2
    err = capsys.readouterr().err
    changed = "llamafactory/sft.json" if stage == "alpha" else "easyr1/rl.jsonl"
    assert f"{data / changed}: changed since the conversion (sha256 differs)" in err
    assert f"convert the data again, then check it:\n  pathvlm data check {data}" in err


def test_runner_refuses_a_manifest_without_file_hashes(data: Path, capsys) -> None:
    manifest = json.loads((data / "manifest.json").read_text())
    del manifest["files"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert main(["run", "alpha", "--size", "7b", "--profile", "h20x4"]) == 2
    assert (
        "no 'files' list (written before file hashes were recorded): convert again" in capsys.readouterr().err
    )
