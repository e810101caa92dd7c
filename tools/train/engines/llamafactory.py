"""SFT with LLaMA-Factory 0.9.5: ``python -m tools.train.engines.sft_train <run>/llamafactory.yaml``.

That is ``llamafactory-cli train`` with two trainer callbacks of ours. The loss guard
(``engines.loss_guard``) stops a diverging run with a clear error. On SLURM's warning before the time
limit (SIGUSR1 to the runner) the runner writes the stop file, and every rank saves ``checkpoint-N`` of the
step it reached and exits (``engines.stop``; the stop file is ``STOP`` beside ``llamafactory.yaml``).
SIGTERM (preemption, scancel) stops it at once: the next run resumes from the last periodic checkpoint
(``save_steps``).

Multi-node runs pass ``FORCE_TORCHRUN``, ``NNODES``, ``NODE_RANK``, ``NPROC_PER_NODE``, ``MASTER_ADDR`` and
``MASTER_PORT`` through the environment (read as LLaMA-Factory's launcher reads them). An interrupted run
resumes by itself: LLaMA-Factory continues from the last ``checkpoint-N`` in ``output_dir``.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tools.recipe.registry import RecipeError
from tools.recipe.run import Run
from tools.train.engines.base import TrainerEngine
from tools.train.engines.paths import LLAMAFACTORY_PATHS, with_absolute_paths

LOSS_GUARD_KEY = "loss_guard_steps"  # ours in llamafactory.yaml: sft_train takes it out for its loss guard


class LlamaFactory(TrainerEngine):
    name = "llamafactory"
    config_name = "llamafactory.yaml"
    launch_env = ("FORCE_TORCHRUN", "NNODES", "NODE_RANK", "NPROC_PER_NODE", "MASTER_ADDR", "MASTER_PORT")

    @staticmethod
    def fill(cfg: Mapping[str, Any], run: Run, init_model: str, run_name: str) -> dict[str, Any]:
        filled = copy.deepcopy(dict(cfg))
        args = filled["llamafactory"]
        args["model_name_or_path"] = init_model
        args["output_dir"] = str(run.checkpoints)
        args["run_name"] = run_name
        args["report_to"] = "wandb"
        return filled

    @property
    def output_dir(self) -> Path:
        return Path(self.cfg["llamafactory"]["output_dir"])

    def fit_to_job(self) -> dict[str, Any]:
        return fit_batch_to_job(self.cfg, job_gpus())

    def engine_file(self, fitted: Mapping[str, Any]) -> dict[str, Any]:
        args = {**self.cfg["llamafactory"], **{k.split(".", 1)[1]: v for k, v in fitted.items()}}
        return {**with_absolute_paths(args, LLAMAFACTORY_PATHS), LOSS_GUARD_KEY: self.cfg["loss_guard_steps"]}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tools.train.engines.sft_train", str(self.run.dir / self.config_name)]

    def export(self, model_dir: Path | None = None) -> None:
        """LLaMA-Factory's final output (or checkpoint ``model_dir``) with the config made flat; a LoRA run's
        adapter is first merged into its base model (``llamafactory-cli export``), so the next stage and the
        evaluation load a full model."""
        if self.cfg["llamafactory"].get("finetuning_type") != "lora":
            super().export(model_dir)
            return
        merged = self.run.dir / "merged.tmp"
        merge_lora(self.cfg["llamafactory"], model_dir or self.output_dir, merged)
        try:
            super().export(merged)
        finally:
            shutil.rmtree(merged, ignore_errors=True)


def job_gpus() -> tuple[int, int] | None:
    """(GPUs per node, nodes) of this SLURM job (``SLURM_GPUS_ON_NODE``; ``NNODES`` as sft.sbatch exports it,
    else ``SLURM_JOB_NUM_NODES``), or None outside a SLURM job with GPUs."""
    per_node = os.environ.get("SLURM_GPUS_ON_NODE")
    if not per_node:
        return None
    return int(per_node), int(os.environ.get("NNODES") or os.environ.get("SLURM_JOB_NUM_NODES") or "1")


def fit_batch_to_job(cfg: Mapping[str, Any], job: tuple[int, int] | None) -> dict[str, Any]:
    """Keep the effective batch (per-GPU batch x accumulation x GPUs) the profile's ``gpus_per_node`` assumes
    when the job has other GPUs (``sbatch --gres=gpu:2``, ``--nodes=2``): the recomputed
    ``llamafactory.gradient_accumulation_steps`` (none when the job has the profile's GPUs); refuses when no
    integer accumulation keeps it. The config and its hash keep the profile's value."""
    expected = cfg["gpus_per_node"]
    if not expected or job is None or job[0] * job[1] == expected:
        return {}
    per_node, nodes = job
    args = cfg["llamafactory"]
    per_device, accumulation = args["per_device_train_batch_size"], args["gradient_accumulation_steps"]
    effective = per_device * accumulation * expected
    gpus = (
        f"the job has {per_node * nodes} GPUs ({nodes} x {per_node}), the profile's batch assumes {expected}"
    )
    if per_node == 0 or effective % (per_device * per_node * nodes):
        problem = (
            f"{gpus}: no gradient accumulation keeps the effective batch {effective} "
            f"(= {per_device} per GPU x {accumulation} x {expected}); request {expected} GPUs, or accept "
            f"another effective batch with --set gpus_per_node={per_node}"
        )
        raise RecipeError(f"{cfg['stage']}/{cfg['size']}/{cfg['profile']}", [problem])
    fitted = effective // (per_device * per_node * nodes)
    print(
        f"# note: {gpus}: llamafactory.gradient_accumulation_steps {accumulation} -> {fitted} keeps the "
        f"effective batch {effective}",
        flush=True,
    )
    return {"llamafactory.gradient_accumulation_steps": fitted}


def merge_lora(args: Mapping[str, Any], adapter: Path, export_dir: Path) -> None:
    """``llamafactory-cli export``: the base model ``args["model_name_or_path"]`` with ``adapter`` merged,
    saved (model, tokenizer, processor) to ``export_dir``."""
    shutil.rmtree(export_dir, ignore_errors=True)
    export_dir.mkdir(parents=True)
    keys = ("model_name_or_path", "template", "trust_remote_code", "image_max_pixels", "image_min_pixels")
    config = {key: args[key] for key in keys if key in args}
    config |= {"adapter_name_or_path": str(adapter), "finetuning_type": "lora", "export_dir": str(export_dir)}
    file = export_dir.with_name(export_dir.name + ".yaml")
    file.write_text(yaml.safe_dump(config))
    cli = Path(sys.executable).with_name("llamafactory-cli")
    try:
        subprocess.run([str(cli), "export", str(file)], check=True)
    finally:
        file.unlink(missing_ok=True)
