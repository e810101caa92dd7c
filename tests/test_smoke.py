"""`make smoke` end to end on CPU: it finishes, shows learning, and a second run skips every finished step."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _smoke(out: Path) -> tuple[str, float]:
    start = time.monotonic()
    result = subprocess.run(
        ["make", "-C", str(REPO), "smoke", f"SMOKE_DIR={out}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout, time.monotonic() - start


@pytest.mark.slow
def test_make_smoke_shows_learning_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    stdout, seconds = _smoke(out)
    summary = json.loads((out / "summary.json").read_text())
    accuracy = summary["test_accuracy"]

    # Learning, with margins measured over several data seeds (see the closing figures in README.md).
    assert accuracy["base"] <= 0.1
    assert accuracy["alpha"] >= summary["chance"] + 0.25
    assert accuracy["alpha"] >= accuracy["base"] + 0.4
    for stage in ("beta", "r1"):
        assert accuracy[stage] >= summary["chance"] + 0.25, stage
    trend = summary["beta_format_reward"]
    assert trend["last_quarter"] > trend["first_quarter"], trend
    assert set(summary["ood_accuracy"]["r1"]) == {
        "chest_ct_scan",
        "isic2020",
        "retinal_oct_c8",
        "diabetic_retinopathy",
    }

    # What the user is told, and where.
    assert "strict accuracy on the synthetic test split" in stdout and "total" in stdout
    report = (out / "reports" / "report.md").read_text()
    assert "PathVLM-R1" in report
    assert list((out / "reports").glob("*.png"))
    r1_config = (out / "runs" / "7b" / "r1" / "config.yaml").read_text()
    assert "api_key_env" in r1_config and "sk-" not in r1_config
    assert seconds < 15 * 60

    # A second run skips every finished step.
    stdout, seconds = _smoke(out)
    for step in ("tiny model", "convert PathMMU", "alpha", "beta", "r1"):
        assert f"{step}: already done, skipped" in stdout
    assert seconds < 120
