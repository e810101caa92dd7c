"""Evaluation results to W&B: one ``eval`` run per size-stage, plus one run with the report's tables.

Naming comes from ``tools.wandb_naming`` (project ``pathvlm-r1``, group = the stage's experiment, run
name ``<size>-<stage>``, stable id, resume allowed), so evaluation sits beside training in the W&B UI.
Metric names are the same for every stage, so runs compare directly:
``eval/in_domain/accuracy`` (+ ``_ci_low``/``_ci_high``), ``eval/in_domain/letter_accuracy``,
``eval/in_domain/format_failure_rate``, ``eval/in_domain/parse_failure_rate``, ``eval/avg_output_tokens``,
``eval/ood/<subset>/accuracy`` (+ CI bounds and letter accuracy). Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.wandb_naming import wandb_env

DEFAULT_EXPERIMENT = "pathvlm-r1"
REPORT_SIZE, REPORT_STAGE = "all", "report"


def experiment_of(runs: Path, size: str, stage: str) -> str:
    """The ``experiment`` of the stage's resolved config; for ``base``, the one the size's stages share."""
    from omegaconf import OmegaConf

    paths = (
        [runs / size / stage / "config.yaml"]
        if stage != "base"
        else sorted((runs / size).glob("*/config.yaml"))
    )
    found = {str(OmegaConf.load(path).get("experiment")) for path in paths if path.exists()} - {"None"}
    return found.pop() if len(found) == 1 else DEFAULT_EXPERIMENT


def eval_metrics(summaries: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Stable metric names from one size-stage's summaries keyed by dataset (``test`` = in-domain)."""
    metrics: dict[str, float] = {}
    for dataset, summary in summaries.items():
        prefix = "eval/in_domain" if dataset == "test" else f"eval/ood/{dataset}"
        low, high = summary["accuracy_ci"]
        metrics |= {
            f"{prefix}/accuracy": summary["accuracy"],
            f"{prefix}/accuracy_ci_low": low,
            f"{prefix}/accuracy_ci_high": high,
            f"{prefix}/letter_accuracy": summary["letter_accuracy"],
            f"{prefix}/n": summary["n"],
        }
        if dataset == "test":
            metrics |= {
                "eval/avg_output_tokens": summary["avg_output_tokens"],
                f"{prefix}/format_failure_rate": summary["format_failure_rate"],
                f"{prefix}/parse_failure_rate": summary["parse_failure_rate"],
            }
    return metrics


def _init(experiment: str, size: str, stage: str, directory: Path, config: dict[str, Any]):
    import wandb

    env = wandb_env(experiment, size, stage, job_type="eval")
    return wandb.init(
        project=env["WANDB_PROJECT"],
        group=env["WANDB_RUN_GROUP"],
        job_type=env["WANDB_JOB_TYPE"],
        name=env["WANDB_NAME"],
        id=env["WANDB_RUN_ID"],
        resume=env["WANDB_RESUME"],
        dir=str(directory),
        config=config,
    )


def _table(rows: Sequence[dict[str, Any]]):
    """Rows as a ``wandb.Table``; columns in first-seen order, absent cells None."""
    import wandb

    columns = list(dict.fromkeys(key for row in rows for key in row))
    return wandb.Table(
        columns=columns, data=[[row.get(c) for c in columns] for row in rows], allow_mixed_types=True
    )


def log_report(
    results: dict[tuple[str, str, str], Any],
    tables: dict[str, list[dict[str, Any]]],
    plots: Sequence[Path],
    runs: Path,
    out: Path,
) -> list[Path]:
    """Log every size-stage's metrics and the report run; returns the local run directories."""
    import wandb

    directory = Path(os.environ.get("WANDB_DIR", out))
    directory.mkdir(parents=True, exist_ok=True)
    by_model: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for (size, stage, dataset), result in sorted(results.items()):
        by_model[(size, stage)][dataset] = result.summary
    run_dirs, experiments = [], set()
    for (size, stage), summaries in by_model.items():
        experiment = experiment_of(runs, size, stage)
        experiments.add(experiment)
        config = {
            "size": size,
            "stage": stage,
            "model": next(iter(summaries.values()))["model"],
            "datasets": {d: {"data_sha256": s["data_sha256"], "n": s["n"]} for d, s in summaries.items()},
        }
        run = _init(experiment, size, stage, directory, config)
        run.log(eval_metrics(summaries))
        run_dirs.append(Path(run.dir).parent)
        run.finish()
    experiment = experiments.pop() if len(experiments) == 1 else DEFAULT_EXPERIMENT
    run = _init(
        experiment, REPORT_SIZE, REPORT_STAGE, directory, {"models": [f"{s}-{st}" for s, st in by_model]}
    )
    logged = {f"report/{name}": _table(rows) for name, rows in tables.items() if rows}
    logged |= {f"report/{path.stem}": wandb.Image(str(path)) for path in plots}
    run.log(logged)
    run_dirs.append(Path(run.dir).parent)
    run.finish()
    return run_dirs
