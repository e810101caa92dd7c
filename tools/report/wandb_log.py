"""Evaluation results to W&B: one ``eval`` run per size-stage, plus one run with the report's tables, and
each trained stage's evaluation summary written into that stage's training run.

Naming comes from ``tools.common.wandb_naming`` (project ``pathvlm-r1``, group = the stage's experiment,
stable id, resume allowed): evaluation runs are named ``<size>-<stage>-eval`` (job type ``eval``); the
training run of a stage (name ``<size>-<stage>``, job type = the stage) is resumed by its stable id and gets
the same metrics in its summary, so the runs table shows a training run's settings (budget, lr, KL, seed) next
to its test accuracy. Offline, the resumed run is a new ``offline-run-*`` directory with the training run's
id; ``wandb sync`` merges it into that run.
Metric names are the same for every stage, so runs compare directly:
``eval/in_domain/accuracy`` (+ ``_ci_low``/``_ci_high``), ``eval/in_domain/letter_accuracy``,
``eval/in_domain/format_failure_rate``, ``eval/in_domain/parse_failure_rate``, ``eval/avg_output_tokens``,
``eval/ood/<subset>/accuracy`` (+ CI bounds and letter accuracy), and when ``pathvlm judge-eval`` has run
``eval/in_domain/judged_{process,integrity,knowledge}`` (+ CI bounds). Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.common.wandb_naming import init_arguments, wandb_env
from tools.evaluation.judge_eval import DIMENSIONS
from tools.recipe.run import BASE, IN_DOMAIN
from tools.report.load import Results

DEFAULT_EXPERIMENT = "pathvlm-r1"
REPORT_SIZE, REPORT_STAGE = "all", "report"


def experiment_of(results: Results, size: str, stage: str) -> str:
    """The ``experiment`` of the stage's resolved config; for ``base``, the one the size's stages share."""
    configs = [c for (s, st), c in results.configs.items() if s == size and (st == stage or stage == BASE)]
    found = {str(config.get("experiment")) for config in configs} - {"None"}
    return found.pop() if len(found) == 1 else DEFAULT_EXPERIMENT


def judged_metrics(judged: dict[str, Any] | None) -> dict[str, float]:
    """The in-domain judged reasoning scores of a ``judged_summary.json`` (none when not judged)."""
    metrics: dict[str, float] = {}
    for dimension in DIMENSIONS if judged else ():
        low, high = judged[f"{dimension}_ci"]
        metrics |= {
            f"eval/in_domain/judged_{dimension}": judged[dimension],
            f"eval/in_domain/judged_{dimension}_ci_low": low,
            f"eval/in_domain/judged_{dimension}_ci_high": high,
        }
    return metrics


def eval_metrics(summaries: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Stable metric names from one size-stage's summaries keyed by dataset (``test`` = in-domain)."""
    metrics: dict[str, float] = {}
    for dataset, summary in summaries.items():
        prefix = "eval/in_domain" if dataset == IN_DOMAIN else f"eval/ood/{dataset}"
        low, high = summary["accuracy_ci"]
        metrics |= {
            f"{prefix}/accuracy": summary["accuracy"],
            f"{prefix}/accuracy_ci_low": low,
            f"{prefix}/accuracy_ci_high": high,
            f"{prefix}/letter_accuracy": summary["letter_accuracy"],
            f"{prefix}/n": summary["n"],
        }
        if dataset == IN_DOMAIN:
            metrics |= {
                "eval/avg_output_tokens": summary["avg_output_tokens"],
                f"{prefix}/format_failure_rate": summary["format_failure_rate"],
                f"{prefix}/parse_failure_rate": summary["parse_failure_rate"],
            }
    return metrics


def _log_run(
    experiment: str,
    size: str,
    stage: str,
    directory: Path,
    metrics: dict[str, Any],
    config: dict[str, Any] | None = None,
    job_type: str = "eval",
    suffix: str = "-eval",
    into_summary: bool = False,
) -> Path:
    """One W&B run (its stable id: resumed) with ``metrics`` logged, or (``into_summary``: a training run)
    written into its summary; returns its local directory."""
    import wandb  # deferred: start-up time of `pathvlm report --no-wandb`

    env = wandb_env(experiment, size, stage, job_type=job_type)
    run = wandb.init(**init_arguments(env, str(directory), suffix), config=config)
    if into_summary:
        run.summary.update(metrics)
    else:
        run.log(metrics)
    run_dir = Path(run.dir).parent
    run.finish()
    return run_dir


def _table(rows: Sequence[dict[str, Any]]):
    """Rows as a ``wandb.Table``; columns in first-seen order, absent cells None."""
    import wandb  # deferred: start-up time

    columns = list(dict.fromkeys(key for row in rows for key in row))
    return wandb.Table(
        columns=columns, data=[[row.get(c) for c in columns] for row in rows], allow_mixed_types=True
    )


def log_report(
    results: Results, tables: dict[str, list[dict[str, Any]]], plots: Sequence[Path], out: Path
) -> list[Path]:
    """Log every size-stage's metrics and the report run; returns the local run directories."""
    import wandb  # deferred: start-up time

    directory = Path(os.environ.get("WANDB_DIR", out))
    directory.mkdir(parents=True, exist_ok=True)
    by_model: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for (size, stage, dataset), result in sorted(results.items()):
        by_model[(size, stage)][dataset] = result.summary
    run_dirs, experiments = [], set()
    for (size, stage), summaries in by_model.items():
        experiment = experiment_of(results, size, stage)
        experiments.add(experiment)
        config = {
            "size": size,
            "stage": stage,
            "model": next(iter(summaries.values()))["model"],
            "datasets": {d: {"data_sha256": s["data_sha256"], "n": s["n"]} for d, s in summaries.items()},
        }
        in_domain = results.get((size, stage, IN_DOMAIN))
        metrics = eval_metrics(summaries) | judged_metrics(in_domain and in_domain.judged_summary)
        run_dirs.append(_log_run(experiment, size, stage, directory, metrics, config))
        if (size, stage) in results.configs:  # a trained stage: its training run too
            training = {"job_type": stage, "suffix": "", "into_summary": True}
            run_dirs.append(_log_run(experiment, size, stage, directory, metrics, **training))
    experiment = experiments.pop() if len(experiments) == 1 else DEFAULT_EXPERIMENT
    logged = {f"report/{name}": _table(rows) for name, rows in tables.items() if rows}
    logged |= {f"report/{path.stem}": wandb.Image(str(path)) for path in plots}
    config = {"models": [f"{s}-{st}" for s, st in by_model]}
    run_dirs.append(_log_run(experiment, REPORT_SIZE, REPORT_STAGE, directory, logged, config, suffix=""))
    return run_dirs
