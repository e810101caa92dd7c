"""Where a run keeps its files: every path under ``<runs>/<size>/<run>/`` is spelled here, once.

``<run>`` is a stage (``alpha``), a stage trained with another seed (``alpha-seed43``), ``base`` (the
untrained model, evaluated only) or, under ``<runs>/api/``, an API model (``gpt-4o``). A trained run holds
``config.yaml`` (the resolved recipe), ``DONE`` (its config hash, written last), ``train.log``,
``checkpoints/``, ``job.json`` (the batch fitted to the job's GPUs), ``STOP`` (a stop request while
training), ``model/`` (the exported Hugging Face model), ``metrics.jsonl``, ``params.json``,
``selection.json`` + ``selection/step-N/`` (model selection on the validation split); every run holds
``eval/<dataset>/`` (``items.jsonl``, ``summary.json``, ``judged.jsonl``, ``judged_summary.json``).

A data folder (``<data>/pathmmu/``) holds ``manifest.json`` and ``eval/<split>.jsonl``: ``manifest_of``
finds the manifest of an eval file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BASE = "base"  # the untrained model's run
API_SIZE = "api"  # the size folder of API models: <runs>/api/<model>/
IN_DOMAIN_BENCHMARK = "pathmmu"  # the data folder of the paper's own benchmark: <data>/pathmmu/
IN_DOMAIN = "test"  # the in-domain dataset: <data>/pathmmu/eval/test.jsonl, evaluated as eval/test/
SEED_SUFFIX = "-seed"
_RUN_NAME = re.compile(rf"^(?P<stage>.+?)(?:{SEED_SUFFIX}(?P<seed>\d+))?$")


@dataclass(frozen=True)
class Run:
    """The folder of one run, ``<runs>/<size>/<name>``, and the name of each file in it."""

    runs: Path
    size: str
    name: str

    @classmethod
    def of(
        cls, runs: Path, size: str, stage: str, seed: int | None = None, default_seed: int | None = None
    ) -> Run:
        """The run of ``stage`` trained with ``seed``: ``<stage>`` for None or the recipe's own seed, else
        ``<stage>-seed<N>``."""
        same = seed is None or seed == default_seed
        return cls(runs, size, stage if same else f"{stage}{SEED_SUFFIX}{seed}")

    @classmethod
    def at(cls, directory: Path) -> Run:
        """The run whose folder is ``directory`` (``<runs>/<size>/<name>``)."""
        return cls(directory.parent.parent, directory.parent.name, directory.name)

    @classmethod
    def of_model(cls, model: str | Path) -> Run | None:
        """The run that exported ``model`` when it is a ``<runs>/<size>/<run>/model`` folder of a run that was
        configured (``config.yaml``) or finished (``DONE``); else None."""
        path = Path(model)
        if path.name != "model" or not path.is_dir():
            return None
        run = cls.at(path.absolute().parent)
        return run if run.done.exists() or run.config.exists() else None

    @property
    def stage(self) -> str:
        return split_name(self.name)[0]

    @property
    def seed(self) -> int | None:
        """The training seed the folder name gives; None for the recipe's own seed."""
        return split_name(self.name)[1]

    @property
    def dir(self) -> Path:
        return self.runs / self.size / self.name

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def done(self) -> Path:
        return self.dir / "DONE"

    @property
    def model(self) -> Path:
        return self.dir / "model"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def train_log(self) -> Path:
        return self.dir / "train.log"

    @property
    def job(self) -> Path:
        """What the runner fitted to this job's GPUs (kept out of the config and its hash)."""
        return self.dir / "job.json"

    @property
    def stop(self) -> Path:
        """The runner's request to checkpoint and stop (SLURM's warning), for the engine to find."""
        return self.dir / "STOP"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def params(self) -> Path:
        return self.dir / "params.json"

    @property
    def selection(self) -> Path:
        return self.dir / "selection.json"

    def selection_step(self, step: int) -> Path:
        """Where checkpoint ``step``'s validation evaluation goes."""
        return self.dir / "selection" / f"step-{step}"

    def eval_dir(self, dataset: str) -> Path:
        return self.dir / "eval" / dataset

    def summaries(self) -> list[Path]:
        """Every ``eval/<dataset>/summary.json`` of this run, by dataset."""
        return sorted(self.dir.glob("eval/*/summary.json"))


def split_name(name: str) -> tuple[str, int | None]:
    """(stage, seed) of a run folder name; seed None for the recipe's own seed."""
    match = _RUN_NAME.match(name)
    assert match is not None  # the pattern matches every non-empty name
    seed = match.group("seed")
    return match.group("stage"), int(seed) if seed is not None else None


def api_run(runs: Path, model: str) -> Run:
    """The run of an API model: ``<runs>/api/<last path part of the model name, lower case>``."""
    return Run(runs, API_SIZE, model.rstrip("/").rsplit("/", 1)[-1].lower())


def finished_runs(runs: Path, size: str) -> list[Run]:
    """The runs of ``size`` marked DONE, by name."""
    return [
        Run(runs, size, path.name) for path in sorted((runs / size).glob("*")) if (path / "DONE").exists()
    ]


def manifest_of(eval_file: Path) -> Path:
    """The split manifest of a data folder's eval file: ``<data>/<benchmark>/eval/<split>.jsonl`` ->
    ``<data>/<benchmark>/manifest.json``."""
    return eval_file.parent.parent / "manifest.json"
