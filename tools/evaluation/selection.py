"""Model selection on the validation split: evaluate every kept checkpoint of a stage, export the best.

With ``<data>/pathmmu/eval/validation.jsonl`` present (``pathvlm data pathmmu --val N``), ``pathvlm run``
keeps every periodic checkpoint (``keep_checkpoints``), and after training evaluates each one on the
validation split with ``evaluate`` (greedy, the same code and image limits as the final evaluation, on the
profile's ``eval_backend``; vLLM in a child process), exports the one with the highest strict accuracy (ties:
the earliest step) and writes ``runs/<size>/<stage>/selection.json`` (the curve step → accuracy, the best
step, the data file and its sha256), also logged to the stage's W&B run (``selection/accuracy`` against
``selection/step``). The test split is never read. Each checkpoint's evaluation lies in
``selection/step-N/validation/``; a rerun reuses the ones already finished.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.common.model_copy import copy_model, model_files
from tools.common.wandb_naming import init_arguments
from tools.evaluation.eval_files import SUMMARY_FILE, file_sha256, read_json, write_json
from tools.evaluation.evaluate import evaluate_separately
from tools.evaluation.settings import EvalSettings, training_settings
from tools.recipe.registry import profile
from tools.recipe.run import Run

VALIDATION = "validation"


def validation_data(manifest: Path) -> Path | None:
    """``<data>/pathmmu/eval/validation.jsonl`` beside the split manifest, if the data have one."""
    path = manifest.parent / "eval" / f"{VALIDATION}.jsonl"
    return path if path.is_file() else None


def keep_checkpoints(cfg: dict[str, Any]) -> None:
    """Keep every periodic checkpoint (the engines otherwise delete all but the last ones)."""
    if cfg["engine"] == "llamafactory":
        cfg["llamafactory"]["save_total_limit"] = None
    else:
        cfg["easyr1"]["trainer"]["save_limit"] = -1


def best_step(curve: Sequence[Mapping[str, Any]]) -> int:
    """The step with the highest accuracy; ties go to the earliest step."""
    if not curve:
        raise ValueError("no checkpoint to select from: the engine saved none (set its save interval)")
    return min(curve, key=lambda point: (-point["accuracy"], point["step"]))["step"]


def selection_settings(cfg: Mapping[str, Any]) -> EvalSettings:
    """Greedy, on the profile's eval backend, with the stage's image limits and its selection token limit."""
    settings = EvalSettings(
        backend=profile(cfg["profile"]).eval_backend, max_new_tokens=cfg["selection_max_new_tokens"]
    )
    return settings.with_training_limits(training_settings([cfg], "the stage's image limits"))


def _validation_summary(model: Path, data: Path, out: Path, settings: EvalSettings) -> dict[str, Any]:
    """The evaluation of checkpoint ``model`` on ``data`` in ``out/validation/``: the one a previous run
    finished with the same data and token limit, else a new one of a flat-config copy (removed after)."""
    summary_path = out / VALIDATION / SUMMARY_FILE
    if summary_path.is_file():
        summary = read_json(summary_path)
        if (summary.get("data_sha256"), summary.get("max_new_tokens")) == (
            file_sha256(data),
            settings.max_new_tokens,
        ):
            return summary
    copy = out / "model"
    copy_model(model, copy, model_files(model))
    try:
        if not evaluate_separately(str(copy), [data], settings, out=out):
            raise RuntimeError(f"validation of {model} failed (its error is above)")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return read_json(summary_path)


def select(
    cfg: dict[str, Any], stage_dir: Path, checkpoints: Sequence[tuple[int, Path]], data: Path
) -> dict[str, Any]:
    """Evaluate ``checkpoints`` (step, model directory) on ``data``; write and return selection.json."""
    run, settings = Run.at(stage_dir), selection_settings(cfg)
    curve = []
    for step, model in sorted(checkpoints):
        summary = _validation_summary(model, data, run.selection_step(step), settings)
        curve.append({"step": step, "accuracy": summary["accuracy"], "n": summary["n"]})
        print(f"selection: step {step} validation accuracy {summary['accuracy']:.4f}", flush=True)
    best = best_step(curve)
    record = {
        "metric": "accuracy",
        "data": str(data.resolve()),
        "data_sha256": file_sha256(data),
        "best_step": best,
        "best_accuracy": next(p["accuracy"] for p in curve if p["step"] == best),
        "last_step": curve[-1]["step"],
        "curve": curve,
    }
    write_json(run.selection, record)
    print(f"selection: exporting step {best} of {[p['step'] for p in curve]}", flush=True)
    return record


def log_to_wandb(record: Mapping[str, Any], env: Mapping[str, str], directory: Path) -> None:
    """The selection curve in the stage's own W&B run (same id: it resumes the training run)."""
    import wandb  # deferred: its import takes seconds and most runs have no validation split

    os.environ.pop("WANDB_SERVICE", None)
    run = wandb.init(**init_arguments(env, str(directory)))
    run.define_metric("selection/step")
    run.define_metric("selection/accuracy", step_metric="selection/step")
    for point in record["curve"]:
        run.log({"selection/step": point["step"], "selection/accuracy": point["accuracy"]})
    run.summary.update(
        {"selection/best_step": record["best_step"], "selection/best_accuracy": record["best_accuracy"]}
    )
    run.finish()
