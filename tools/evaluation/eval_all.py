"""``pathvlm eval-all``: a size's finished stage models and its base model on every converted eval file
(``pathvlm eval-all --help``), in this process, or with vLLM one child process per model."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from tools.common.errors import UserError
from tools.evaluation.evaluate import evaluate_separately
from tools.evaluation.settings import EvalSettings, training_settings
from tools.recipe.compose import compose, one_stage_per_engine
from tools.recipe.run import IN_DOMAIN, IN_DOMAIN_BENCHMARK, Run, finished_runs

# `pathvlm data <name>` outputs that `eval-all` (make eval / baselines) evaluates beside the in-domain test
EXTRA_BENCHMARKS = ("omnimedvqa", "pathvqa", "mmmu")


def eval_datasets(root: Path) -> list[Path]:
    """The in-domain test file and every converted OOD / extra benchmark file under the data root."""
    in_domain = root / IN_DOMAIN_BENCHMARK / "eval" / f"{IN_DOMAIN}.jsonl"
    files = [in_domain] if in_domain.is_file() else []
    for benchmark in EXTRA_BENCHMARKS:
        files += sorted((root / benchmark / "eval").glob("*.jsonl"))
    return files


def _has_rows(path: Path) -> bool:
    with path.open("rb") as handle:
        return any(line.strip() for line in handle)


def size_training_settings(runs: Path, size: str, profile: str) -> dict[str, Any]:
    """The base model and image limits the size's stage configs agree on; before any stage is trained,
    those of the profile's recipes (one stage per engine)."""
    configs: list[Any] = [
        run.config for run in map(Run.at, sorted((runs / size).glob("*"))) if run.config.is_file()
    ]
    if not configs:
        configs = [compose(stage, size, profile, []) for stage in one_stage_per_engine()]
    return training_settings(configs, "--base-model / --max-pixels / --min-pixels")


def evaluate_all(
    size: str,
    runs: Path,
    data_root: Path,
    profile: str,
    settings: EvalSettings,
    base_model: str | None = None,
    base: bool = True,
    stages: bool = True,
) -> int:
    """Evaluate the base model (``base``) and the finished stage models (``stages``); exit code 1 when an
    evaluation failed (the others still run)."""
    datasets = eval_datasets(data_root)
    if not datasets:
        raise SystemExit(
            f"{data_root}: no pathmmu/eval/test.jsonl nor {{{','.join(EXTRA_BENCHMARKS)}}}/eval/*.jsonl"
        )
    empty = [str(path) for path in datasets if not _has_rows(path)]
    if empty:  # `eval` would stop at it before evaluating any other file
        raise SystemExit(f"eval files without items (check them with pathvlm data check): {', '.join(empty)}")
    models = [str(run.model) for run in finished_runs(runs, size)] if stages else []
    trained = size_training_settings(runs, size, profile)
    settings = settings.with_training_limits(trained)
    if base:
        base_model = base_model or trained.get("base_model")
        if base_model is None:
            raise SystemExit(f"{runs / size}: no stage config names base_model; pass --base-model")
        models.insert(0, base_model)
    failed = [model for model in models if not _evaluated(model, datasets, settings, size, runs)]
    if failed:
        print(f"evaluation failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _evaluated(model: str, datasets: list[Path], settings: EvalSettings, size: str, runs: Path) -> bool:
    """Evaluate one model; a failure is reported and leaves the next models to run."""
    print(f"+ eval {model}", flush=True)
    try:
        return evaluate_separately(model, datasets, settings, size=size, runs=runs)
    except SystemExit as error:
        print(f"error: {model}: {error.code}", file=sys.stderr)
    except UserError as error:
        print(f"error: {model}: {error}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - one model's failure must not stop the others' evaluation
        traceback.print_exc()
    return False
