"""Each reward teaches what it measures: a short GRPO run on the tiny model raises that reward's own metric,
and the same run with the reward replaced by a constant does not.

One cpu alpha (the smoke's recipe) on synthetic data, a beta of one step with a constant reward (its model is
alpha's: GRPO's advantages are 0), then `pathvlm run r1` from it with the reward weights of the run under
test: only format, only the fake judge's process score, or none (all weights 0: a constant reward). Every
run logs all three metrics (``reward/<name>``, the mean over each step's sampled completions), whatever
their weights; a metric
"rises" when the mean of its last quarter of steps exceeds that of its first quarter by ``RISE``.
Margins measured on this setup are in the closing note of issue 16. The accuracy reward has no case here
yet: this alpha samples ~3 % correct answers, and 16 steps with accuracy alone moved that 0.031 -> 0.039.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tools.cli import main as cli_main
from tools.report_learning import quarters, reward_curves

pytestmark = pytest.mark.slow

RISE = 0.1  # last-quarter mean minus first-quarter mean a working reward must reach, a constant must not
STEPS = 16
GRPO = [
    f"easyr1.trainer.max_steps={STEPS}",
    "easyr1.trainer.save_freq=-1",
    "easyr1.worker.actor.optim.lr=3.0e-3",
]
WEIGHTS = {  # run -> (format, accuracy, process) weights
    "format": (1, 0, 0),
    "process": (0, 0, 1),
    "constant": (0, 0, 0),
}


@pytest.fixture(scope="module")
def curves(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, list[float]]]]:
    """Per run (``WEIGHTS``), the per-step curve of each reward."""
    from tools.data.pathmmu import convert_pathmmu
    from tools.data.synth import write_synthetic_pathmmu
    from tools.judge_server import JudgeServer

    root = tmp_path_factory.mktemp("learning")
    convert_pathmmu(write_synthetic_pathmmu(root / "src", 300), root / "data" / "pathmmu", sizes=(200, 64))
    found: dict[str, dict[str, list[float]]] = {}
    with JudgeServer() as judge, pytest.MonkeyPatch.context() as env:
        for name, value in {
            "PATHVLM_DATA": root / "data",
            "PATHVLM_RUNS": root / "runs",
            "PATHVLM_TINY_MODEL": root / "tiny",
            "PATHVLM_JUDGE_PORT": judge.port,
            "PATHVLM_JUDGE_CACHE": root / "judge-cache",
            "WANDB_DIR": root,
            "OMP_NUM_THREADS": "1",
        }.items():
            env.setenv(name, str(value))
        recipe = ["--size", "tiny", "--profile", "cpu"]
        assert cli_main(["run", "alpha", *recipe]) == 0
        kwargs = "easyr1.worker.reward.reward_function_kwargs"
        constant = [f"{kwargs}.format_weight=0", f"{kwargs}.accuracy_weight=0", "easyr1.trainer.max_steps=1"]
        assert cli_main(["run", "beta", *recipe, "--set", *constant]) == 0
        for run, (fmt, acc, proc) in WEIGHTS.items():
            weights = [f"{kwargs}.format_weight={fmt}", f"{kwargs}.accuracy_weight={acc}"]
            weights.append(f"{kwargs}.process_weight={proc}")
            assert cli_main(["run", "r1", *recipe, "--force", "--set", *GRPO, *weights]) == 0, run
            found[run] = reward_curves(root / "runs" / "tiny" / "r1")
            (root / f"curves-{run}.json").write_text(json.dumps(found[run]))
        yield found


def _rise(values: list[float]) -> float:
    first, last = quarters(values)  # type: ignore[misc]
    return last - first


@pytest.mark.parametrize("reward", ["format", "process"])
def test_a_reward_raises_its_metric_and_a_constant_does_not(
    curves: dict[str, dict[str, list[float]]], reward: str
) -> None:
    trained, constant = curves[reward][reward], curves["constant"][reward]
    assert len(trained) == len(constant) == STEPS
    assert _rise(trained) >= RISE, (reward, trained)
    assert _rise(constant) < RISE, (reward, constant)
