"""What the runner asks of a training engine (``Engine``), and the share of the Trainer-backed ones.

An engine is built for one run: ``Engine(cfg, run)`` with the resolved config (``fill`` wrote the engine's
model, output and logger settings into a copy of it) and the run's folder (``tools.recipe.run.Run``). The
runner writes ``engine_file`` to ``run.dir / config_name`` (unless that is ``config.yaml`` itself), launches
``command``, and afterwards exports the model with ``export``.

``TrainerEngine`` is an engine whose training is a Hugging Face Trainer saving ``checkpoint-N`` folders and
its final model at the top of ``output_dir`` (LLaMA-Factory, TRL): checkpoint discovery, resume (a killed
run's torn checkpoints tidied), the export of model, ``metrics.jsonl`` and ``params.json``, and the stop
request by file on SLURM's warning (``engines.stop``).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from tools.common.model_copy import copy_model, model_files
from tools.recipe.run import Run
from tools.train.process import StopHandler, forward_signal, request_stop_file

TRAINER_STATE = "trainer_state.json"  # transformers writes it last when it saves a checkpoint or finishes
# LLaMA-Factory's own report of what it trains; the TRL engine prints the same line.
_PARAMS_LINE = re.compile(r"trainable params: ([\d,]+) \|\| all params: ([\d,]+)")
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


class Engine(ABC):
    """One run's training engine, as the runner drives it."""

    name: ClassVar[str]  # as ``--dry-run`` names it
    config_name: ClassVar[str]  # the file in the run folder that the engine reads
    launch_env: ClassVar[tuple[str, ...]] = ()  # launcher variables shown in the printed command

    def __init__(self, cfg: dict[str, Any], run: Run) -> None:
        self.cfg, self.run = cfg, run

    @staticmethod
    @abstractmethod
    def fill(cfg: Mapping[str, Any], run: Run, init_model: str, run_name: str) -> dict[str, Any]:
        """A copy of the resolved config with the engine's model, output and logger settings."""

    def fit_to_job(self) -> dict[str, Any]:
        """Engine-section values refitted to this job's GPUs (dotted keys, e.g. ``llamafactory.x``); none."""
        return {}

    @abstractmethod
    def engine_file(self, fitted: Mapping[str, Any]) -> dict[str, Any]:
        """What goes into ``config_name``, with the values ``fit_to_job`` refitted."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that trains (it resumes from the last checkpoint by itself)."""

    @abstractmethod
    def finished(self) -> bool:
        """Training completed: only the export is left."""

    @abstractmethod
    def resume(self) -> Path | None:
        """Tidy what a killed run left; the checkpoint training resumes from (None: from the start)."""

    @abstractmethod
    def stop_handlers(self) -> dict[int, StopHandler]:
        """What each signal the runner receives while training does: checkpoint and stop, the engine's way."""

    @abstractmethod
    def trained_steps(self) -> int:
        """The optimizer steps the finished run took (a run of 0 steps is never DONE)."""

    @abstractmethod
    def checkpoints(self) -> list[tuple[int, Path]]:
        """The kept checkpoints as (step, Hugging Face model directory), for model selection."""

    @abstractmethod
    def export(self, model_dir: Path | None = None) -> None:
        """``run.model`` from the final model or ``model_dir`` (a selected checkpoint), ``run.metrics`` and,
        where the engine reports it, ``run.params``."""


class TrainerEngine(Engine):
    """An engine whose training is a Hugging Face Trainer writing to ``output_dir`` (see the module doc)."""

    @property
    @abstractmethod
    def output_dir(self) -> Path: ...

    def finished(self) -> bool:
        return trainer_finished(self.output_dir)

    def resume(self) -> Path | None:
        return prepare_trainer_resume(self.output_dir)

    def stop_handlers(self) -> dict[int, StopHandler]:
        return {signal.SIGUSR1: request_stop_file(self.run.stop), signal.SIGTERM: forward_signal}

    def trained_steps(self) -> int:
        return trainer_step(self.output_dir) or 0

    def checkpoints(self) -> list[tuple[int, Path]]:
        return trainer_checkpoints(self.output_dir)

    def export(self, model_dir: Path | None = None) -> None:
        """The Trainer's final output (or the checkpoint ``model_dir``: model, tokenizer, processor) as
        ``run.model``, its log history as ``run.metrics``, the parameter report as ``run.params``."""
        source = model_dir or self.output_dir
        copy_model(source, self.run.model, model_files(source))
        write_trainer_metrics(self.output_dir, self.run.metrics)
        write_params(self.run.train_log, self.run.params)


# ---------------------------------------------------------------------------------- Trainer checkpoints


def trainer_step(directory: Path) -> int | None:
    """``global_step`` of the trainer state in ``directory``; None where it is missing or torn."""
    try:
        state = json.loads((directory / TRAINER_STATE).read_text(encoding="utf-8"))
        step = state["global_step"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def checkpoint_step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def _checkpoints(output_dir: Path) -> list[Path]:
    if not output_dir.is_dir():
        return []
    return [p for p in output_dir.iterdir() if p.is_dir() and _CHECKPOINT.fullmatch(p.name)]


def _complete_checkpoints(output_dir: Path) -> dict[int, Path]:
    """step -> ``checkpoint-N`` whose trainer state was written and reads."""
    return {checkpoint_step(p): p for p in _checkpoints(output_dir) if trainer_step(p) is not None}


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N``, or None."""
    complete = _complete_checkpoints(output_dir)
    return complete[max(complete)] if complete else None


def prepare_trainer_resume(output_dir: Path) -> Path | None:
    """Delete half-written ``checkpoint-N`` directories a killed run left, set aside (rename to
    ``checkpoint-N.torn``) one whose trainer state does not read; return the one to resume from."""
    for path in _checkpoints(output_dir):
        if not (path / TRAINER_STATE).is_file():
            print(f"removing incomplete checkpoint {path}", flush=True)
            shutil.rmtree(path)
        elif trainer_step(path) is None:
            aside = path.with_name(f"{path.name}.torn")
            shutil.rmtree(aside, ignore_errors=True)
            path.rename(aside)
            print(f"{path / TRAINER_STATE} is torn or unreadable: set aside as {aside}", flush=True)
    return last_checkpoint(output_dir)


def trainer_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, directory) of every complete ``checkpoint-N`` and of the final model, if it is a later step."""
    found, final = _complete_checkpoints(output_dir), trainer_step(output_dir)
    if final is not None and trainer_finished(output_dir):
        found.setdefault(final, output_dir)
    return sorted(found.items())


def trainer_finished(output_dir: Path) -> bool:
    """A Hugging Face Trainer run saved its final model and state at the top of ``output_dir``."""
    return trainer_step(output_dir) is not None and (output_dir / "config.json").is_file()


# ---------------------------------------------------------------------------------- export and metrics


def metric_name(key: str) -> str:
    """TRL's ``rewards/<name>/mean`` becomes ``reward/<name>`` (EasyR1's naming); other keys stay."""
    match = re.fullmatch(r"rewards/(.+)/mean", key)
    return f"reward/{match.group(1)}" if match else key


def write_trainer_metrics(output_dir: Path, metrics: Path) -> None:
    """``metrics.jsonl`` from a Trainer's ``log_history`` (all steps, resumed runs included)."""
    state = json.loads((output_dir / TRAINER_STATE).read_text(encoding="utf-8"))
    write_jsonl(metrics, [{metric_name(k): v for k, v in entry.items()} for entry in state["log_history"]])


def write_params(log: Path, params: Path) -> None:
    """``params.json`` with the trainable/total parameter counts the engine printed last in its log."""
    matches = _PARAMS_LINE.findall(log.read_text(encoding="utf-8", errors="replace")) if log.is_file() else []
    if not matches:
        raise RuntimeError(f"{log}: no 'trainable params: N || all params: M' line from the engine")
    trainable, total = (int(n.replace(",", "")) for n in matches[-1])
    params.write_text(json.dumps({"trainable": trainable, "total": total}) + "\n")


def params_line(trainable: int, total: int) -> str:
    """The parameter report in LLaMA-Factory's words, so ``write_params`` reads every engine's log."""
    share = 100 * trainable / total
    return f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {share:.4f}"


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
