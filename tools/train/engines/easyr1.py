"""GRPO with EasyR1 (GPU): ``python -m tools.train.engines.easyr1_main config=<stage_dir>/easyr1.yaml``,
that is ``python -m verl.trainer.main`` with the run's W&B identity in Ray's runtime_env (``easyr1_main``).

Checkpoints go to ``<stage_dir>/checkpoints/global_step_N/actor``; with ``trainer.find_last_checkpoint`` an
interrupted run resumes from the last one. The export merges the last actor checkpoint into a Hugging Face
model (``…/actor/merged``, in the base model's dtype; it counts only once complete, see ``merged``) with
EasyR1's ``scripts/model_merger.py``, which ships in EasyR1's source tree but not in its wheel:
set ``EASYR1_HOME`` to a checkout of the pinned commit (default ``.cache/EasyR1``), e.g.
``git clone https://github.com/hiyouga/EasyR1 .cache/EasyR1 && git -C .cache/EasyR1 checkout b44b311``.
Multi-node: start Ray on every node first (``ray start --head`` / ``ray start --address``) and set
``easyr1.trainer.nnodes``; the command runs on the head node.

EasyR1 has no hook to checkpoint on request: on SLURM's warning (SIGUSR1) the runner lets it train on until
its next periodic checkpoint is complete (the tracker names a newer step), then stops it with SIGTERM; the
recipes keep ``save_freq`` short enough for the warning window (slurm/README.md). A missing tracked
checkpoint stops the launch (EasyR1 would start from step 0). EasyR1 empties ``experiment_log.jsonl`` on every
start: the runner moves it aside as ``experiment_log.attempt-N.jsonl`` first and joins the attempts at export.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from tools.common.model_copy import copy_model
from tools.common.wandb_naming import WANDB_PROJECT
from tools.recipe.run import Run
from tools.train.engines.base import Engine, write_jsonl
from tools.train.engines.paths import EASYR1_PATHS, with_absolute_paths
from tools.train.process import StopHandler, forward_signal

TRACKER = "checkpoint_tracker.json"  # verl.utils.checkpoint.CHECKPOINT_TRACKER
EXPERIMENT_LOG = "experiment_log.jsonl"  # written by EasyR1's `file` logger (emptied when it starts)
ATTEMPT_LOG = "experiment_log.attempt-{}.jsonl"  # earlier attempts' logs, moved aside by ``resume``
DATALOADER_STATE = "dataloader.pt"  # EasyR1 writes it after the actor (and critic) checkpoint
POLL_S = 5.0  # how often the runner looks for EasyR1's next checkpoint after a stop request
DEFAULT_EASYR1_HOME = ".cache/EasyR1"
MERGED_DIR = "merged"  # global_step_N/actor/merged: the merged model, renamed into place when complete
MERGE_WORK_DIR = "merge.tmp"  # the merger's temporary local_dir (a leftover is a killed merge: redone)
DEFAULT_DTYPE = "bfloat16"  # a base config without a dtype: the merger's own


def fill_easyr1(cfg: Mapping[str, Any], run: Run, init_model: str, run_name: str) -> dict[str, Any]:
    """A copy of ``cfg`` with the ``easyr1:`` model, checkpoint folder and logger names (the TRL engine reads
    the same keys)."""
    filled = copy.deepcopy(dict(cfg))
    section = filled["easyr1"]
    section["worker"]["actor"]["model"]["model_path"] = init_model
    trainer = section["trainer"]
    trainer["save_checkpoint_path"] = str(run.checkpoints)
    trainer["project_name"] = WANDB_PROJECT
    trainer["experiment_name"] = run_name
    trainer["find_last_checkpoint"] = True
    trainer["load_checkpoint_path"] = None
    trainer["logger"] = list(dict.fromkeys([*trainer.get("logger", []), "file", "wandb"]))
    return filled


class EasyR1(Engine):
    name = "easyr1"
    config_name = "easyr1.yaml"
    fill = staticmethod(fill_easyr1)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.cfg["easyr1"]["trainer"]["save_checkpoint_path"])

    @property
    def dtype(self) -> str:
        """The dtype merged checkpoints are saved in: the base model's."""
        return base_dtype(self.cfg["easyr1"]["worker"]["actor"]["model"]["model_path"])

    def engine_file(self, fitted: Mapping[str, Any]) -> dict[str, Any]:
        return with_absolute_paths(self.cfg["easyr1"], EASYR1_PATHS)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tools.train.engines.easyr1_main",
            f"config={self.run.dir / self.config_name}",
        ]

    def finished(self) -> bool:
        """The tracked ``trainer.max_steps``: only EasyR1's final validation was left,
        which `pathvlm eval` replaces (relaunching would rebuild every worker to run it)."""
        max_steps, step = self.cfg["easyr1"]["trainer"].get("max_steps"), tracked_step(self.checkpoint_dir)
        return bool(max_steps) and step is not None and step >= max_steps

    def resume(self) -> Path | None:
        """Keep the last attempt's metrics, refuse a tracker that names a missing checkpoint; return the
        ``global_step_N`` EasyR1 resumes from (``trainer.find_last_checkpoint``), if any."""
        resume = check_tracked_checkpoint(self.checkpoint_dir)
        kept = keep_attempt_log(self.checkpoint_dir)
        if kept is not None:
            print(f"kept the last attempt's metrics as {kept}", flush=True)
        return resume

    def stop_handlers(self) -> dict[int, StopHandler]:
        return {
            signal.SIGUSR1: stop_after_next_checkpoint(self.checkpoint_dir),
            signal.SIGTERM: forward_signal,
        }

    def trained_steps(self) -> int:
        """The step of the last checkpoint (EasyR1 saves one when training ends), 0 before any."""
        return tracked_step(self.checkpoint_dir) or 0

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Every kept ``global_step_N/actor``, merged (N counts EasyR1 steps)."""
        actors = [p / "actor" for p in self.checkpoint_dir.glob("global_step_*") if (p / "actor").is_dir()]
        return sorted((int(a.parent.name.rsplit("_", 1)[1]), merged(a, self.dtype)) for a in actors)

    def export(self, model_dir: Path | None = None) -> None:
        """Merge the last actor checkpoint (``…/global_step_N/actor``) in the base model's dtype, or take the
        merged checkpoint ``model_dir``, and copy it to ``run.model``; the attempts' logs as metrics."""
        if model_dir is None:
            model_dir = merged(last_actor_checkpoint(self.checkpoint_dir), self.dtype)
        copy_model(model_dir, self.run.model)
        rows = joined_log(self.checkpoint_dir)
        if rows:
            write_jsonl(self.run.metrics, rows)


def tracked_step(checkpoint_dir: Path) -> int | None:
    """``last_global_step`` of EasyR1's checkpoint tracker, None before the first checkpoint."""
    tracker = checkpoint_dir / TRACKER
    if not tracker.is_file():
        return None
    return int(json.loads(tracker.read_text(encoding="utf-8"))["last_global_step"])


def complete_steps(checkpoint_dir: Path) -> list[int]:
    """Steps whose ``global_step_N`` EasyR1 finished writing (its dataloader state is written last)."""
    if not checkpoint_dir.is_dir():
        return []
    steps = [
        int(match.group(1))
        for path in checkpoint_dir.iterdir()
        if (match := re.fullmatch(r"global_step_(\d+)", path.name)) and (path / DATALOADER_STATE).is_file()
    ]
    return sorted(steps)


def check_tracked_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The ``global_step_N`` EasyR1 resumes from; raises when the tracker names one that is gone, because
    EasyR1's ``find_latest_ckpt`` would then silently train from step 0."""
    step = tracked_step(checkpoint_dir)
    if step is None:
        return None
    folder = checkpoint_dir / f"global_step_{step}"
    if (folder / DATALOADER_STATE).is_file():
        return folder
    tracker, older = checkpoint_dir / TRACKER, [s for s in complete_steps(checkpoint_dir) if s < step]
    if older:
        fix = (
            f"resume from the newest complete checkpoint, global_step_{older[-1]}:\n"
            f"  printf '{{\"last_global_step\": {older[-1]}}}\\n' > {tracker}"
        )
    else:
        fix = f"no complete checkpoint is left; start the stage again from step 0:\n  rm {tracker}"
    raise FileNotFoundError(
        f"{tracker} names global_step_{step}, but {folder} is missing or incomplete (a job killed while "
        f"EasyR1 saved?); EasyR1 would silently train from step 0. To {fix}\nthen run the stage again."
    )


def keep_attempt_log(checkpoint_dir: Path) -> Path | None:
    """Move the last attempt's ``experiment_log.jsonl`` aside (EasyR1 empties it when it starts)."""
    log = checkpoint_dir / EXPERIMENT_LOG
    if not log.is_file() or log.stat().st_size == 0:
        return None
    attempt = checkpoint_dir / ATTEMPT_LOG.format(len(_attempt_logs(checkpoint_dir)) + 1)
    log.rename(attempt)
    return attempt


def _attempt_logs(checkpoint_dir: Path) -> list[Path]:
    logs = checkpoint_dir.glob(ATTEMPT_LOG.format("*"))
    return sorted(logs, key=lambda p: int(p.name.split("-")[-1].split(".")[0]))


def joined_log(checkpoint_dir: Path) -> list[dict[str, Any]]:
    """Every attempt's rows, in order; an attempt that resumed from step s replaces earlier rows of steps
    after s (they were trained again from the checkpoint)."""
    rows: list[dict[str, Any]] = []
    for path in [*_attempt_logs(checkpoint_dir), checkpoint_dir / EXPERIMENT_LOG]:
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        attempt = [_flatten(json.loads(line)) for line in lines if line.strip()]
        if attempt:
            first = min(row["step"] for row in attempt)
            rows = [row for row in rows if row["step"] < first] + attempt
    return rows


def stop_after_next_checkpoint(checkpoint_dir: Path, poll_s: float = POLL_S) -> StopHandler:
    """A handler that waits (in a thread) until EasyR1's tracker names a newer step, then sends SIGTERM."""

    def handler(process: subprocess.Popen[str], signum: int) -> None:
        start = tracked_step(checkpoint_dir) or 0
        print(
            f"signal {signum}: EasyR1 has no checkpoint hook; stopping it once its next periodic checkpoint "
            f"(after global_step_{start}) is complete",
            flush=True,
        )

        def watch() -> None:
            while process.poll() is None:
                step = tracked_step(checkpoint_dir) or 0
                if step > start:
                    print(f"global_step_{step} saved: stopping EasyR1", flush=True)
                    process.terminate()
                    return
                time.sleep(poll_s)

        threading.Thread(target=watch, daemon=True).start()

    return handler


def merger_script() -> Path:
    home = Path(os.environ.get("EASYR1_HOME", DEFAULT_EASYR1_HOME))
    script = home / "scripts" / "model_merger.py"
    if not script.is_file():
        raise FileNotFoundError(
            f"{script} not found: EasyR1's model merger ships in its source tree, not its wheel. Set "
            "EASYR1_HOME to an EasyR1 checkout at commit b44b311 (git clone "
            f"https://github.com/hiyouga/EasyR1 {DEFAULT_EASYR1_HOME} && "
            f"git -C {DEFAULT_EASYR1_HOME} checkout b44b311)"
        )
    return script


def last_actor_checkpoint(checkpoint_dir: Path) -> Path:
    tracker, step = checkpoint_dir / TRACKER, tracked_step(checkpoint_dir)
    if step is None:
        raise FileNotFoundError(f"{tracker} not found: EasyR1 saved no checkpoint (set trainer.save_freq)")
    actor = checkpoint_dir / f"global_step_{step}" / "actor"
    if not actor.is_dir():
        raise FileNotFoundError(f"{actor} not found (named by {tracker})")
    return actor


def merged(actor: Path, dtype: str) -> Path:
    """``actor/merged``: the actor checkpoint as a Hugging Face model in ``dtype``, merged once.

    EasyR1's merger writes into ``<local_dir>/huggingface``, where the checkpoint's config already is, so a
    killed merge used to look finished. It now runs on a temporary ``local_dir`` (links to the shards, a
    copy of the config files); its output is checked (every weight the index names is in its file), cast to
    ``dtype`` and only then renamed into place: an interrupted merge is redone from scratch."""
    out = actor / MERGED_DIR
    if out.is_dir():
        return out
    work = actor / MERGE_WORK_DIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for source in [*actor.glob("model_world_size_*_rank_*.pt"), actor / "lora_adapter"]:
        if source.exists():
            (work / source.name).symlink_to(source.resolve())
    weights = shutil.ignore_patterns("*.safetensors", "*.safetensors.index.json", "*.bin")
    shutil.copytree(actor / "huggingface", work / "huggingface", ignore=weights)
    subprocess.run([sys.executable, str(merger_script()), "--local_dir", str(work)], check=True)
    check_complete(work / "huggingface")
    set_dtype(work / "huggingface", dtype)
    (work / "huggingface").rename(out)
    shutil.rmtree(work)
    return out


def check_complete(model_dir: Path) -> None:
    """Raise unless every tensor that ``model.safetensors.index.json`` names (or ``model.safetensors``, for
    one file) is in its file, and every file reads (a truncated one does not)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    else:
        weight_map = dict.fromkeys(_tensor_names(model_dir / "model.safetensors"), "model.safetensors")
    found = {name for file in set(weight_map.values()) for name in _tensor_names(model_dir / file)}
    missing = sorted(set(weight_map) - found)
    if missing or not weight_map:
        raise RuntimeError(
            f"{model_dir}: EasyR1's merger left an incomplete model ({len(missing)} of {len(weight_map)} "
            f"tensors missing, e.g. {missing[:3]}); it was not used: run the export again to redo the merge"
        )


def _tensor_names(path: Path) -> list[str]:
    """The tensors a safetensors file holds; none when it is missing or unreadable."""
    try:
        with safe_open(str(path), "pt") as shard:
            return list(shard.keys())
    except (FileNotFoundError, SafetensorError):
        return []


def base_dtype(model_path: str) -> str:
    """The dtype the base model was published in (``bfloat16`` for Qwen2.5-VL), from its config."""
    from transformers import AutoConfig  # deferred: a second of start-up, needed at export only

    dtype = AutoConfig.from_pretrained(model_path).dtype
    return str(dtype).removeprefix("torch.") if dtype is not None else DEFAULT_DTYPE


def set_dtype(model_dir: Path, dtype: str) -> None:
    """Cast the floating-point tensors of every safetensors file to ``dtype`` (EasyR1's merger writes bf16)
    and say ``dtype`` in ``config.json`` (the merger copies the fp32 actor's)."""
    import torch  # deferred: needed at export only
    from safetensors.torch import load_file, save_file

    target = getattr(torch, dtype)
    for path in sorted(model_dir.glob("*.safetensors")):
        tensors = load_file(str(path))
        if any(t.is_floating_point() and t.dtype != target for t in tensors.values()):
            cast = {k: t.to(target) if t.is_floating_point() else t for k, t in tensors.items()}
            save_file(cast, str(path), metadata={"format": "pt"})
    config_file = model_dir / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    for section in (config, config.get("text_config"), config.get("vision_config")):
        for key in ("dtype", "torch_dtype") if isinstance(section, dict) else ():
            if key in section:
                section[key] = dtype
    config["dtype"] = dtype
    config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """EasyR1's file logger nests ``reward/format`` as ``{"reward": {"format": …}}``: undo it."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        flat |= _flatten(value, f"{prefix}{key}/") if isinstance(value, dict) else {f"{prefix}{key}": value}
    return flat
