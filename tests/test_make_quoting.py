"""User-set make variables reach the shell as literal words: no $(...), backtick, quote or ; in them runs."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def hostile_values(marker: Path) -> list[str]:
    """Values that each create ``marker`` (or a sibling) if any shell or make evaluates them."""
    return [
        f"/x`touch {marker}1`",
        f"/x$(touch {marker}2)",
        f"/x $(shell touch {marker}3)",
        f"/x'; touch {marker}4; echo '",
        f'/x"; touch {marker}5; echo "',
        f"a b; touch {marker}6",
    ]


def make(*args: str, dry: bool = True) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "GEMINI_API_KEY")}
    command = ["make", "--no-print-directory", *(["-n"] if dry else []), "-C", str(REPO), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, env=environ)


def assert_nothing_ran(marker: Path) -> None:
    assert not list(marker.parent.glob(marker.name + "*")), "a hostile make variable was evaluated"


TARGETS = {
    "data": ["PATHMMU_ROOT", "OMNIMEDVQA_ROOT", "DATA", "PATHMMU_ARGS"],
    "alpha": ["SIZE", "PROFILE", "BUDGET", "RUN_ARGS", "SEEDS"],
    "eval": ["SIZE", "PROFILE", "DATA", "EVAL_ARGS", "EVAL_BACKEND", "JUDGE_EVAL_ARGS"],
    "baselines": ["SIZE", "PROFILE", "DATA", "EVAL_ARGS"],
    "report": ["REPORTS", "REPORT_ARGS"],
    "smoke-clean": ["SMOKE_DIR"],
    "pipeline": ["SIZE", "PROFILE", "BUDGET", "SEEDS", "SBATCH_ARGS"],
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_make_n_passes_hostile_values_as_literal_words(target: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    for value in hostile_values(marker):
        settings = [f"{name}={value}" for name in TARGETS[target]]
        result = make(target, *settings, "JUDGE_EVAL=1", "PATHMMU_ROOT=r", "OMNIMEDVQA_ROOT=o")
        assert result.returncode == 0, result.stderr
        assert_nothing_ran(marker)
        commands = result.stdout.replace("\\\n", " ")
        assert "pathvlm" in commands or "rm -rf" in commands or "pipeline.sh" in commands, commands
        shlex.split(commands)  # every quote in the values stays balanced


def test_single_values_stay_one_word_with_spaces_and_quotes() -> None:
    value = """/my data/it's "here\""""
    out = make("eval", f"DATA={value}", "SIZE=3b", "JUDGE_EVAL=").stdout
    words = shlex.split(next(line for line in out.splitlines() if "eval-all" in line))
    assert words[words.index("--data-root") + 1] == value
    out = make("data", f"PATHMMU_ROOT={value}", "OMNIMEDVQA_ROOT=o", "DATA=d").stdout
    words = shlex.split(next(line for line in out.splitlines() if "data pathmmu" in line))
    assert words[words.index("--root") + 1] == value


def test_argument_lists_keep_their_words() -> None:
    out = make("alpha", "RUN_ARGS=--set a=1 b=$HOME", "SEEDS=42 43").stdout
    line = next(line for line in out.splitlines() if " run alpha" in line)
    assert line.startswith("for seed in 42 43; do ")
    assert line.endswith("--set a=1 'b=$HOME' --seed $seed || exit $?; done")


def test_real_make_data_with_hostile_roots_runs_nothing(tmp_path: Path) -> None:
    """Not a dry run: the recipes really run (and stop at the missing data), nothing in the values runs."""
    marker = tmp_path / "PWNED"
    hostile = hostile_values(marker)
    result = make(
        "data",
        f"PATHMMU_ROOT={hostile[0]}",
        f"OMNIMEDVQA_ROOT={hostile[1]}",
        f"DATA={tmp_path / 'out'}{hostile[3]}",
        dry=False,
    )
    assert result.returncode != 0
    assert "/x`touch" in result.stderr  # the converter saw the literal path
    smoke = make("smoke-clean", f"SMOKE_DIR={tmp_path}/s{hostile[2]}{hostile[4]}", dry=False)
    assert smoke.returncode == 0, smoke.stderr
    assert_nothing_ran(marker)
