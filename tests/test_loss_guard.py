"""The loss guard stops a diverged run: unit cases, then forced divergences of LLaMA-Factory and TRL (CPU)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from tools.cli import main as cli_main
from tools.train.engines.loss_guard import MARKER, LossDiverged, LossGuard
from tools.train.failure import guard_line

NAN, INF = math.nan, math.inf


def _feed(k: int, losses: list[float | dict], zero_loss_is_bad: bool = True) -> int | None:
    """The step at which the guard fires on these logged losses (a dict: the whole log line), or None."""
    guard = LossGuard(k, zero_loss_is_bad)
    for step, entry in enumerate(losses, 1):
        logs = entry if isinstance(entry, dict) else {"loss": entry, "grad_norm": 1.0}
        try:
            guard.on_log(None, SimpleNamespace(global_step=step), None, logs=logs)
        except LossDiverged:
            return step
    return None


@pytest.mark.parametrize(
    ("k", "losses", "fires_at"),
    [
        (3, [1.0, NAN, NAN, NAN], 4),
        (3, [1.0, INF, 0.0, NAN], 4),  # any mix of NaN, inf and exactly 0
        (3, [NAN, NAN, 1.0, NAN, NAN], None),  # a finite loss resets the count
        (1, [0.0], 1),
        (2, [1e-9, 1e-9, -INF, -INF], 4),  # tiny is fine, -inf is not
        (2, [{"loss": 2.0, "grad_norm": NAN}, {"loss": 2.0, "grad_norm": INF}], 2),  # a broken grad-norm
        (2, [{"eval_loss": NAN}, {"eval_loss": NAN}], None),  # only training losses count
    ],
)
def test_sft_guard_fires_after_k_consecutive_bad_steps(k: int, losses: list, fires_at: int | None) -> None:
    assert _feed(k, losses) == fires_at


@pytest.mark.parametrize(
    ("losses", "fires_at"),
    [
        ([0.0, -0.0, 0.0, 0.0], None),  # a healthy GRPO loss is about 0 (logged rounded to 4 decimals)
        ([0.0, NAN, NAN], 3),
        (
            [
                {"loss": 0.0, "grad_norm": 0.5},
                {"loss": 0.0, "grad_norm": NAN},
                {"loss": 0.0, "grad_norm": NAN},
            ],
            3,
        ),
    ],
)
def test_grpo_guard_ignores_zero_losses(losses: list, fires_at: int | None) -> None:
    assert _feed(2, losses, zero_loss_is_bad=False) == fires_at


def test_message_names_steps_losses_and_grad_norms(tmp_path: Path) -> None:
    guard = LossGuard(2)
    guard.on_log(None, SimpleNamespace(global_step=7), None, logs={"loss": 0.0, "grad_norm": NAN})
    with pytest.raises(LossDiverged) as info:
        guard.on_log(None, SimpleNamespace(global_step=8), None, logs={"loss": NAN, "grad_norm": INF})
    message = str(info.value)
    assert message.startswith(MARKER) and "stopped at step 8" in message
    assert "step 7: loss 0.0, grad-norm nan, step 8: loss nan, grad-norm inf" in message
    log = tmp_path / "train.log"
    log.write_text(f"old attempt\nTraceback\ntools.train.engines.loss_guard.LossDiverged: {message}\n")
    assert guard_line(log, 0, MARKER) == message
    assert guard_line(log, log.stat().st_size, MARKER) is None  # only this attempt's lines count
    with pytest.raises(ValueError, match="at least 1"):
        LossGuard(0)


@pytest.fixture
def runs(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tools.data.pathmmu import convert_pathmmu
    from tools.dev.synth import write_synthetic_pathmmu

    convert_pathmmu(
        write_synthetic_pathmmu(tmp_path / "src", 40), tmp_path / "data" / "pathmmu", sizes=(16, 8)
    )
    for name, value in {
        "PATHVLM_DATA": tmp_path / "data",
        "PATHVLM_RUNS": tmp_path / "runs",
        "PATHVLM_TINY_MODEL": tiny_model,
        "WANDB_DIR": tmp_path,
    }.items():
        monkeypatch.setenv(name, str(value))
    return tmp_path / "runs"


# A learning rate of 1e30 blows the weights up after the first update: loss 0 with a NaN grad-norm from then
# on, the symptom LLaMA-Factory users report for Qwen2.5-VL full SFT. GRPO: 4 updates per rollout batch, so
# the broken model logs its losses before it would have to sample again.
DIVERGE = {
    "delta": [
        "llamafactory.per_device_train_batch_size=8",
        "llamafactory.max_steps=-1",
        "llamafactory.num_train_epochs=4",
        "llamafactory.warmup_ratio=0",
        "llamafactory.learning_rate=1e30",
    ],
    "epsilon": [
        "easyr1.data.max_response_length=16",
        "easyr1.data.rollout_batch_size=8",
        "easyr1.worker.actor.global_batch_size=2",
        "easyr1.worker.actor.micro_batch_size_per_device_for_update=8",
        "easyr1.worker.actor.micro_batch_size_per_device_for_experience=32",
        "easyr1.worker.actor.model.enable_gradient_checkpointing=false",
        "easyr1.worker.actor.optim.lr=1e30",
        "easyr1.trainer.max_steps=1",
        "easyr1.trainer.save_freq=-1",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", DIVERGE)
def test_forced_divergence_stops_the_engine_with_a_clear_error(
    runs: Path, capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    code = cli_main(["run", stage, "--profile", "cpu", "--set", *DIVERGE[stage], "loss_guard_steps=2"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"error: tiny/{stage}: {MARKER} training stopped at step" in err
    assert "on 2 consecutive logged steps" in err and "grad-norm nan" in err
    assert not (runs / "tiny" / stage / "DONE").exists() and not (runs / "tiny" / stage / "model").exists()
