"""Every result under a runs root, read once into one ``Results`` structure that each report section reads.

Per run folder ``<runs>/<size>/<run>/`` (``tools.recipe.run.Run``): its ``config.yaml``, ``selection.json``,
``metrics.jsonl`` reward curves and each ``eval/<dataset>/`` (summary and items, checked to belong together by
``tools.evaluation.eval_files``; the judged scores of the in-domain one; pass@k folders apart). Files that
cannot be trusted stop the report with every problem listed. Each evaluation carries the split its model was
trained on, so no section compares runs of two splits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from tools.evaluation.eval_files import EvalFileError, check_folder, ids_sha256, jsonl_objects, read_json
from tools.evaluation.judge_eval import JUDGED_FILE, JUDGED_SUMMARY_FILE
from tools.evaluation.stats import cluster_bootstrap_ci
from tools.recipe.run import IN_DOMAIN, Run, manifest_of
from tools.report.authors2026 import SPLIT as AUTHORS_SPLIT
from tools.report.paper import model_label

PAPER_SPLIT = "paper-style"  # a data manifest without "split" (or another one): the paper's layout
REWARDS = ("format", "accuracy", "process")  # reward/<name> in a GRPO run's metrics.jsonl
Key = tuple[str, str, str]  # (size, run, dataset)


@dataclass(frozen=True)
class Evaluation:
    """One model's greedy evaluation on one dataset; ``stage`` is the run folder (``beta-seed43``)."""

    size: str
    stage: str
    dataset: str
    summary: dict[str, Any]
    records: dict[str, dict[str, Any]]
    split: str = PAPER_SPLIT
    judged: dict[str, float] | None = None  # per-item process score (``pathvlm judge-eval``)
    judged_summary: dict[str, Any] | None = None

    def correct(self, field: str = "correct") -> dict[str, bool | None]:
        """Each item's ``field``: strict ``correct``, or an authors' scoring ``<name>_correct`` (None in
        records written before it existed)."""
        return {id_: record.get(field) for id_, record in self.records.items()}

    @cached_property
    def images(self) -> dict[str, str] | None:
        """Each item's image; None when a record lacks it (older records)."""
        if any("image" not in record for record in self.records.values()):
            return None
        return {id_: record["image"] for id_, record in self.records.items()}

    @cached_property
    def cluster_ci(self) -> tuple[float, float] | None:
        """Image-cluster bootstrap 95 % CI (%) of the strict accuracy (tables share it)."""
        return pooled_cluster_ci([self])


@dataclass(frozen=True)
class Sampled:
    """A pass@k folder (``pathvlm eval --samples N``): its summary and each item's correct samples."""

    size: str
    stage: str
    summary: dict[str, Any]
    counts: list[int]


@dataclass(frozen=True)
class Results(Mapping[Key, Evaluation]):
    """Everything the report reads; as a mapping, the greedy evaluations by (size, run, dataset)."""

    runs: Path
    evaluations: dict[Key, Evaluation]
    sampled: list[Sampled] = field(default_factory=list)
    configs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    selections: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    curves: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=dict)

    def __getitem__(self, key: Key) -> Evaluation:
        return self.evaluations[key]

    def __iter__(self) -> Iterator[Key]:
        return iter(self.evaluations)

    def __len__(self) -> int:
        return len(self.evaluations)

    def only(self, split: str) -> Results:
        """The evaluations of runs trained on ``split``."""
        return replace(self, evaluations={k: e for k, e in self.evaluations.items() if e.split == split})

    def splits(self) -> list[str]:
        """The splits present, paper-style first."""
        return sorted({e.split for e in self.values()}, key=lambda split: split != PAPER_SPLIT)

    def split_unit(self, size: str, run: str) -> str:
        """``run.split_unit`` of a run's config.yaml (``image`` when not recorded); ``–`` without one."""
        if (size, run) not in self.configs:
            return "–"
        return str((self.configs[(size, run)].get("run") or {}).get("split_unit", "image"))


def pooled_cluster_ci(parts: list[Evaluation], field: str = "correct") -> tuple[float, float] | None:
    """Image-cluster bootstrap 95 % CI (%) of ``field`` over the items of ``parts`` pooled; None when a
    record lacks its image."""
    correct: list[float] = []
    images: list[str] = []
    for part in parts:
        by_id, image_of = part.correct(field), part.images
        if image_of is None:
            return None
        correct += [float(by_id[i]) for i in sorted(by_id)]  # type: ignore[arg-type]
        images += [image_of[i] for i in sorted(by_id)]
    low, high = cluster_bootstrap_ci(correct, images)
    return low * 100, high * 100


def _yaml(path: Path) -> dict[str, Any] | None:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _split_of(recorded: Any) -> str:
    """Our name of the split a manifest records (``PAPER_SPLIT`` for none or another one)."""
    return AUTHORS_SPLIT if recorded == AUTHORS_SPLIT else PAPER_SPLIT


def _manifest_split(manifest: Path) -> str | None:
    """``split`` of a data manifest (``PAPER_SPLIT`` when it records none); None when it cannot be read."""
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _split_of(recorded.get("split") if isinstance(recorded, dict) else None)


def model_split(config: dict[str, Any] | None, in_domain: dict[str, Any] | None) -> str:
    """The split a model was trained on: ``run.split`` of its ``config.yaml`` (the runner records the
    manifest's), else the data manifest it names (``run.manifest``), else (the base model, API models, a
    manifest not on this machine) the manifest beside its in-domain eval data; paper-style when none can
    be read."""
    run = (config or {}).get("run") or {}
    if run.get("split"):
        return _split_of(run["split"])
    manifests = [Path(run["manifest"])] if run.get("manifest") else []
    if in_domain is not None and in_domain.get("data"):
        manifests.append(manifest_of(Path(in_domain["data"])))
    splits = (_manifest_split(manifest) for manifest in manifests)
    return next((split for split in splits if split is not None), PAPER_SPLIT)


def read_judged(eval_dir: Path, ids: str) -> tuple[dict[str, float], dict[str, Any]] | None:
    """Per-item process scores and the summary of a judged folder, checked against its evaluation's ids;
    None if not judged."""
    summary_path, path = eval_dir / JUDGED_SUMMARY_FILE, eval_dir / JUDGED_FILE
    if not summary_path.exists():
        return None
    judged = read_json(summary_path)
    if judged.get("ids_sha256") != ids:
        raise EvalFileError(f"{summary_path}: judged other items than summary.json covers; rerun judge-eval")
    if not path.is_file():
        raise EvalFileError(f"{path}: missing")
    scores: dict[str, float] = {}
    for line_no, row in jsonl_objects(path):
        try:
            id_, process = row["id"], float(row["process"])
        except (ValueError, KeyError, TypeError) as error:
            raise EvalFileError(f"{path}:{line_no}: not a judged record ({error})") from error
        if id_ in scores:
            raise EvalFileError(f"{path}:{line_no}: duplicate id {id_!r}")
        scores[id_] = process
    if ids_sha256(scores) != ids:
        raise EvalFileError(f"{path}: ids differ from judged_summary.json's")
    return scores, judged


def _reward_curves(path: Path) -> dict[str, list[float]]:
    """``reward/<name>`` per logged training step of a GRPO run's metrics.jsonl."""
    rows = [row for _, row in jsonl_objects(path)]
    return {
        name: [float(row[f"reward/{name}"]) for row in rows if f"reward/{name}" in row]
        for name in REWARDS
        if any(f"reward/{name}" in row for row in rows)
    }


def _sample_counts(folder: Path, summary: dict[str, Any], records: dict[str, dict[str, Any]]) -> list[int]:
    counts = []
    for line_no, record in enumerate(records.values(), 1):
        if len(record.get("sample_correct", ())) != summary["samples"]:
            raise EvalFileError(
                f"{folder / 'items.jsonl'}:{line_no}: expected {summary['samples']} scored samples "
                "(sample_correct), as summary.json says"
            )
        counts.append(sum(record["sample_correct"]))
    return counts


def load(runs: Path) -> Results:
    """Every run folder under ``runs`` (in path order) and everything the report reads in it."""
    evaluations: dict[Key, Evaluation] = {}
    sampled, configs, selections, curves = [], {}, {}, {}
    problems: dict[str, list[str]] = {
        "evaluation folders": [],
        "judged evaluation files": [],
        "pass@k folders": [],
    }
    for directory in sorted(p for p in runs.glob("*/*") if p.is_dir()):
        run = Run.at(directory)
        config = _yaml(run.config) if run.config.is_file() else None
        if run.config.is_file():
            configs[(run.size, run.name)] = config or {}
        if run.selection.is_file():
            selections[(run.size, run.name)] = json.loads(run.selection.read_text(encoding="utf-8"))
        if run.metrics.is_file():
            curves[(run.size, run.name)] = _reward_curves(run.metrics)
        trained = (config or {}).get("size")
        for path in run.summaries():
            folder = path.parent
            if trained is not None and str(trained) != run.size:
                problems["evaluation folders"].append(
                    f"{run.dir}: trained at size {trained} (config.yaml) but filed under {run.size}, so it "
                    f"would be reported as {model_label(run.size, run.name)}: move it to "
                    f"{Run(runs, str(trained), run.name).dir}"
                )
                continue
            try:
                summary, records = check_folder(folder)
            except EvalFileError as error:
                problems["evaluation folders"].append(str(error))
                continue
            if summary.get("samples") is not None:  # pass@k: only its own table reads it
                try:
                    sampled.append(
                        Sampled(run.size, run.name, summary, _sample_counts(folder, summary, records))
                    )
                except EvalFileError as error:
                    problems["pass@k folders"].append(str(error))
                continue
            judged = None
            if folder.name == IN_DOMAIN:
                try:
                    judged = read_judged(folder, summary["ids_sha256"])
                except EvalFileError as error:
                    problems["judged evaluation files"].append(str(error))
            key = (run.size, run.name, folder.name)
            evaluations[key] = Evaluation(
                *key, summary, records, judged=judged and judged[0], judged_summary=judged and judged[1]
            )
    for what, found in problems.items():
        if found:
            raise SystemExit(f"{what} that cannot be trusted:\n  " + "\n  ".join(found))
    for (size, name, dataset), evaluation in evaluations.items():
        in_domain = evaluations.get((size, name, IN_DOMAIN))
        split = model_split(configs.get((size, name)), in_domain.summary if in_domain else None)
        evaluations[(size, name, dataset)] = replace(evaluation, split=split)
    return Results(runs, evaluations, sampled, configs, selections, curves)
