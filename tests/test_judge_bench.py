"""The benchmark scripts run end to end (small sizes): output shape, cache replay with zero calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> list[str]:
    command = [sys.executable, str(ROOT / "benchmarks" / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    return done.stdout.strip().splitlines()


def test_bench_judge_small() -> None:
    lines = run("bench_judge.py", "--rollouts", "24", "--concurrency", "8", "--latency-ms", "20")
    assert lines[-1].startswith("efficiency: ")
    assert 0 < float(lines[-1].split()[1]) <= 1.05
    assert "second pass (cache): 0 calls, 24 cache hits, same scores: True" in lines
    assert any(", 24 calls, 0 retries, 0 failed" in line for line in lines)


def test_bench_rewards_small() -> None:
    lines = run("bench_rewards.py", "--responses", "2000")
    assert lines[-1].startswith("rule rewards: 2000 responses in ")
