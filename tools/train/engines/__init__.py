"""Training engines the stage runner launches, and what they share.

A stage's ``engine`` names the recipe section it fills (``SECTIONS``); the profile's ``grpo_engine`` picks the
module that trains an ``easyr1:`` section there (``GRPO_ENGINES``: EasyR1 on GPUs, TRL on a CPU).
Each engine module defines:

- ``CONFIG_NAME``: the file (in the stage directory) the engine reads;
- ``prepare(cfg, stage_dir, init_model, run_name)``: fill the engine section of the resolved config ``cfg``
  (a plain dict) in place: the initial model, checkpoint/output directories, logger names;
- ``engine_config(cfg)``: what goes into ``CONFIG_NAME``;
- ``command(stage_dir)``: the command line that trains (it resumes from the last checkpoint by itself);
- ``finished(cfg, stage_dir)``: whether training already completed (only the export is left);
- ``stop_handlers(cfg, stage_dir)``: what each signal the runner receives during training does
  (``run_logged``'s ``on_signal``): checkpoint and stop, in the engine's own way;
- ``before_launch(cfg)``: tidy what a killed run left, report what the engine will drop silently, and
  return the checkpoint training resumes from (None: from the start);
- ``trained_steps(cfg, stage_dir)``: the optimizer steps the finished run took (the runner never marks a
  run of 0 steps DONE);
- ``checkpoints(cfg, stage_dir)``: the kept checkpoints as (step, Hugging Face model directory), for model
  selection on the validation split (``tools.evaluation.selection``);
- ``export(cfg, stage_dir, model_dir=None)``: write ``stage_dir/model`` (Hugging Face directory, flat
  Qwen2.5-VL config) from the final model or from ``model_dir`` (a selected checkpoint), ``metrics.jsonl``
  and, where the engine reports it, ``params.json``.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.common.errors import naming
from tools.common.model_dir import TRAINER_STATE, copy_model, model_files
from tools.recipe import registry
from tools.recipe.compose import SECTIONS

CHECKPOINT_DIR = "checkpoints"
MODEL_DIR = "model"
METRICS_FILE = "metrics.jsonl"
PARAMS_FILE = "params.json"
TRAIN_LOG = "train.log"
# The runner's request to checkpoint and stop (tools.train.engines.stop): a file in the stage directory,
# named to the engine by this variable and deleted before each launch.
STOP_FILE, STOP_FILE_ENV = "STOP", "PATHVLM_STOP_FILE"

# LLaMA-Factory's own report of what it trains; the TRL engine prints the same line.
_PARAMS_LINE = re.compile(r"trainable params: ([\d,]+) \|\| all params: ([\d,]+)")


# Per recipe section, the module of each engine a profile may name.
GRPO_ENGINES = {"easyr1": "easyr1", "trl": "trl_grpo"}


def for_config(cfg: Mapping[str, Any]) -> ModuleType:
    """The engine module of a composed config: LLaMA-Factory for ``llamafactory:``, the profile's
    ``grpo_engine`` (EasyR1, or TRL) for ``easyr1:``."""
    if cfg["engine"] == "llamafactory":
        name = "llamafactory"
    elif cfg["engine"] == "easyr1":
        name = GRPO_ENGINES[registry.profile(cfg["profile"]).grpo_engine]
    else:
        raise ValueError(f"engine {cfg['engine']!r}: expected one of {list(SECTIONS)}")
    return importlib.import_module(f"{__name__}.{name}")


StopHandler = Callable[["subprocess.Popen[str]", int], None]


def run_logged(
    command: list[str],
    env: Mapping[str, str],
    log_path: Path,
    on_signal: Mapping[int, StopHandler] | None = None,
) -> int:
    """Run ``command``, appending its output to ``log_path`` and copying it to stdout but for INFO records of
    LLaMA-Factory / transformers (``QuietInfo``: progress, warnings and errors stay); return its exit code.

    While it runs, a signal in ``on_signal`` (SLURM's SIGUSR1 warning before the time limit, SIGTERM on
    preemption; default: SIGTERM forwarded) calls its handler with the process, which asks the engine to
    checkpoint and stop in the engine's own way, and the runner waits for the engine to finish.
    The engine stops with the runner: on Ctrl-C or an exception it is terminated, and on Linux it gets
    SIGTERM when the runner dies in any other way (a killed job), so it never trains on as an orphan.
    """
    handlers = {signal.SIGTERM: forward_signal} if on_signal is None else on_signal
    console = QuietInfo()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with naming(log_path), log_path.open("a", encoding="utf-8") as log:  # a full disk names the log
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        previous = {
            sig: signal.signal(sig, lambda signum, _, handler=handler: handler(process, signum))
            for sig, handler in handlers.items()
        }
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if console.shown(line):
                    print(line, end="", flush=True)
                log.write(line)
                log.flush()
            return process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class QuietInfo:
    """Which engine output lines reach the console: not an ``[INFO|…]`` / ``[DEBUG|…]`` record of
    LLaMA-Factory or transformers, nor the lines continuing it (indented, ``- …``, brackets, blank)."""

    _RECORD = re.compile(r"^\[(INFO|DEBUG|WARNING|ERROR|CRITICAL)\|")
    _CONTINUATION = re.compile(r"^(\s|- |[{}\[\]()],?$|$)")

    def __init__(self) -> None:
        self.hiding = False

    def shown(self, line: str) -> bool:
        record = self._RECORD.match(line)
        if record is not None:
            self.hiding = record.group(1) in ("INFO", "DEBUG")
        elif not self._CONTINUATION.match(line.rstrip("\n")):
            self.hiding = False
        return not self.hiding


def forward_signal(process: subprocess.Popen[str], signum: int) -> None:
    """Pass the signal on to the engine (one that handles it itself)."""
    process.send_signal(signum)


def request_stop_file(path: Path) -> StopHandler:
    """A handler that writes the stop file ``path`` (tools.train.engines.stop) for the engine to find."""

    def handler(process: subprocess.Popen[str], signum: int) -> None:
        path.write_text(f"{signum}\n", encoding="utf-8")
        print(f"signal {signum}: asked the engine to checkpoint and stop ({path})", flush=True)

    return handler


def die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM) in the child, between fork and exec."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


# ---------------------------------------------------------------------------------- Trainer checkpoints


def trainer_step(directory: Path) -> int | None:
    """``global_step`` of the trainer state in ``directory``; None where it is missing or torn."""
    try:
        state = json.loads((directory / TRAINER_STATE).read_text(encoding="utf-8"))
        step = state["global_step"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` (one whose trainer state was written and reads), or None."""
    complete = [p for p in _checkpoints(output_dir) if trainer_step(p) is not None]
    return max(complete, key=_step, default=None)


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


def checkpoint_step(path: Path) -> int:
    return _step(path)


def _checkpoints(output_dir: Path) -> list[Path]:
    if not output_dir.is_dir():
        return []
    return [p for p in output_dir.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]


def _step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def trainer_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, directory) of every complete ``checkpoint-N`` and of the final model, if it is a later step."""
    found = {_step(p): p for p in _checkpoints(output_dir) if trainer_step(p) is not None}
    if trainer_finished(output_dir):
        found.setdefault(trainer_step(output_dir), output_dir)
    return sorted(found.items())


def trainer_finished(output_dir: Path) -> bool:
    """A Hugging Face Trainer run saved its final model and state at the top of ``output_dir``."""
    return trainer_step(output_dir) is not None and (output_dir / "config.json").is_file()


# ---------------------------------------------------------------------------------- export


def export_trainer_output(output_dir: Path, stage_dir: Path, model_dir: Path | None = None) -> None:
    """A Hugging Face Trainer's final output (or the checkpoint ``model_dir``: model, tokenizer, processor)
    as ``stage_dir/model``, its log history as ``metrics.jsonl``, the parameter report as ``params.json``."""
    source = model_dir or output_dir
    copy_model(source, stage_dir / MODEL_DIR, model_files(source))
    write_trainer_metrics(output_dir, stage_dir)
    write_params(stage_dir)


def metric_name(key: str) -> str:
    """TRL's ``rewards/<name>/mean`` becomes ``reward/<name>`` (EasyR1's naming); other keys stay."""
    match = re.fullmatch(r"rewards/(.+)/mean", key)
    return f"reward/{match.group(1)}" if match else key


def write_trainer_metrics(output_dir: Path, stage_dir: Path) -> None:
    """``metrics.jsonl`` from a Trainer's ``log_history`` (all steps, resumed runs included)."""
    state = json.loads((output_dir / TRAINER_STATE).read_text(encoding="utf-8"))
    rows = [{metric_name(k): v for k, v in entry.items()} for entry in state["log_history"]]
    write_jsonl(stage_dir / METRICS_FILE, rows)


def write_params(stage_dir: Path) -> None:
    """``params.json`` with the trainable/total parameter counts the engine printed last in its log."""
    log = stage_dir / TRAIN_LOG
    matches = _PARAMS_LINE.findall(log.read_text(encoding="utf-8", errors="replace")) if log.is_file() else []
    if not matches:
        raise RuntimeError(f"{log}: no 'trainable params: N || all params: M' line from the engine")
    trainable, total = (int(n.replace(",", "")) for n in matches[-1])
    (stage_dir / PARAMS_FILE).write_text(json.dumps({"trainable": trainable, "total": total}) + "\n")


def params_line(trainable: int, total: int) -> str:
    """The parameter report in LLaMA-Factory's words, so ``write_params`` reads every engine's log."""
    share = 100 * trainable / total
    return f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {share:.4f}"


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
