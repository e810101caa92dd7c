"""Model selection on the validation split: evaluate every kept checkpoint of a stage, export the best.

With ``<data>/pathmmu/eval/validation.jsonl`` present (``pathvlm data pathmmu --val N``), ``pathvlm run``
keeps every periodic checkpoint (``keep_checkpoints``), and after training evaluates each one on the
validation split with ``pathvlm eval`` (greedy, the same code and image limits as the final evaluation,
on the profile's ``eval_backend``), exports the one with the highest strict accuracy (ties:
the earliest step) and writes ``runs/<size>/<stage>/selection.json`` (the curve step → accuracy, the best
step, the data file and its sha256), also logged to the stage's W&B run (``selection/accuracy`` against
``selection/step``). The test split is never read. Each checkpoint's evaluation lies in
``selection/step-N/validation/``; a rerun reuses the ones already finished.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

VALIDATION = "validation"
SELECTION_FILE = "selection.json"
SELECTION_DIR = "selection"


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


def _evaluate(model: Path, data: Path, out: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """``pathvlm eval`` of one checkpoint (a flat-config copy, removed afterwards) on ``data``."""
    from tools.common.model_copy import copy_model, model_files
    from tools.evaluation.evaluate import file_sha256, training_settings
    from tools.recipe.registry import profile

    summary_path = out / VALIDATION / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        same = (summary.get("data_sha256"), summary.get("max_new_tokens"))
        if same == (file_sha256(data), cfg["selection_max_new_tokens"]):
            return summary
    copy = out / "model"
    copy_model(model, copy, model_files(model))
    settings = training_settings([cfg], "the stage's image limits")  # the resolved config in hand
    command = [sys.executable, "-m", "tools.cli", "eval", "--model", str(copy), "--data", str(data)]
    command += ["--out", str(out), "--backend", profile(cfg["profile"]).eval_backend]
    command += ["--max-new-tokens", str(cfg["selection_max_new_tokens"])]
    for flag, key in (("--max-pixels", "max_pixels"), ("--min-pixels", "min_pixels")):
        if settings.get(key) is not None:
            command += [flag, str(settings[key])]
    print("+ " + " ".join(command), flush=True)
    code = subprocess.run(command, check=False).returncode
    shutil.rmtree(copy, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"validation of {model} failed with exit {code} (command above)")
    return json.loads(summary_path.read_text(encoding="utf-8"))


def select(
    cfg: dict[str, Any], stage_dir: Path, checkpoints: Sequence[tuple[int, Path]], data: Path
) -> dict[str, Any]:
    """Evaluate ``checkpoints`` (step, model directory) on ``data``; write and return selection.json."""
    from tools.evaluation.evaluate import file_sha256

    curve = []
    for step, model in sorted(checkpoints):
        summary = _evaluate(model, data, stage_dir / SELECTION_DIR / f"step-{step}", cfg)
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
    tmp = stage_dir / (SELECTION_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(stage_dir / SELECTION_FILE)
    print(f"selection: exporting step {best} of {[p['step'] for p in curve]}", flush=True)
    return record


def log_to_wandb(record: Mapping[str, Any], env: Mapping[str, str], directory: Path) -> None:
    """The selection curve in the stage's own W&B run (same id: it resumes the training run)."""
    import wandb

    os.environ.pop("WANDB_SERVICE", None)
    run = wandb.init(
        project=env["WANDB_PROJECT"],
        group=env["WANDB_RUN_GROUP"],
        job_type=env["WANDB_JOB_TYPE"],
        name=env["WANDB_NAME"],
        id=env["WANDB_RUN_ID"],
        resume="allow",
        dir=str(directory),
    )
    run.define_metric("selection/step")
    run.define_metric("selection/accuracy", step_metric="selection/step")
    for point in record["curve"]:
        run.log({"selection/step": point["step"], "selection/accuracy": point["accuracy"]})
    run.summary.update(
        {"selection/best_step": record["best_step"], "selection/best_accuracy": record["best_accuracy"]}
    )
    run.finish()
