"""SFT with LLaMA-Factory 0.9.5: ``python -m tools.train.engines.sft_train <stage_dir>/llamafactory.yaml``.

That is ``llamafactory-cli train`` with two trainer callbacks of ours. The loss guard
(``engines.loss_guard``) stops a diverging run with a clear error. On SLURM's warning before the time
limit (SIGUSR1 to the runner) the runner writes the stop file, and every rank saves ``checkpoint-N`` of the
step it reached and exits (``engines.stop``). SIGTERM (preemption, scancel) stops it at once: the next
run resumes from the last periodic checkpoint (``save_steps``).

Multi-node runs pass ``FORCE_TORCHRUN``, ``NNODES``, ``NODE_RANK``, ``NPROC_PER_NODE``, ``MASTER_ADDR`` and
``MASTER_PORT`` through the environment (read as LLaMA-Factory's launcher reads them). An interrupted run
resumes by itself: LLaMA-Factory continues from the last ``checkpoint-N`` in ``output_dir``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.train.engines import (
    CHECKPOINT_DIR,
    STOP_FILE,
    StopHandler,
    export_trainer_output,
    forward_signal,
    prepare_trainer_resume,
    request_stop_file,
    trainer_checkpoints,
    trainer_finished,
    trainer_step,
)

CONFIG_NAME = "llamafactory.yaml"
LAUNCH_ENV = ("FORCE_TORCHRUN", "NNODES", "NODE_RANK", "NPROC_PER_NODE", "MASTER_ADDR", "MASTER_PORT")


def prepare(cfg: dict[str, Any], stage_dir: Path, init_model: str, run_name: str) -> None:
    args = cfg["llamafactory"]
    args["model_name_or_path"] = init_model
    args["output_dir"] = str(stage_dir / CHECKPOINT_DIR)
    args["run_name"] = run_name
    args["report_to"] = "wandb"
    fit_batch_to_job(cfg)


def job_gpus() -> tuple[int, int] | None:
    """(GPUs per node, nodes) of this SLURM job (``SLURM_GPUS_ON_NODE``; ``NNODES`` as sft.sbatch exports it,
    else ``SLURM_JOB_NUM_NODES``), or None outside a SLURM job with GPUs."""
    per_node = os.environ.get("SLURM_GPUS_ON_NODE")
    if not per_node:
        return None
    return int(per_node), int(os.environ.get("NNODES") or os.environ.get("SLURM_JOB_NUM_NODES") or "1")


def fit_batch_to_job(cfg: dict[str, Any]) -> None:
    """Keep the effective batch (per-GPU batch x accumulation x GPUs) the profile's ``gpus_per_node`` assumes
    when the job has other GPUs (``sbatch --gres=gpu:2``, ``--nodes=2``): recompute
    ``gradient_accumulation_steps`` and say so, or refuse when no integer accumulation keeps it."""
    from tools.recipe.registry import RecipeError

    job, expected = job_gpus(), cfg["gpus_per_node"]
    if not expected or job is None or job[0] * job[1] == expected:
        return
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
    args["gradient_accumulation_steps"] = effective // (per_device * per_node * nodes)
    print(
        f"# note: {gpus}: llamafactory.gradient_accumulation_steps {accumulation} -> "
        f"{args['gradient_accumulation_steps']} keeps the effective batch {effective}",
        flush=True,
    )


def engine_config(cfg: dict[str, Any]) -> dict[str, Any]:
    from tools.train.engines.paths import llamafactory_file

    return llamafactory_file(cfg["llamafactory"])


def command(stage_dir: Path) -> list[str]:
    return [sys.executable, "-m", "tools.train.engines.sft_train", str(stage_dir / CONFIG_NAME)]


def stop_handlers(cfg: dict[str, Any], stage_dir: Path) -> dict[int, StopHandler]:
    return {signal.SIGUSR1: request_stop_file(stage_dir / STOP_FILE), signal.SIGTERM: forward_signal}


def finished(cfg: dict[str, Any], stage_dir: Path) -> bool:
    return trainer_finished(Path(cfg["llamafactory"]["output_dir"]))


def before_launch(cfg: dict[str, Any]) -> Path | None:
    return prepare_trainer_resume(Path(cfg["llamafactory"]["output_dir"]))


def trained_steps(cfg: dict[str, Any], stage_dir: Path) -> int:
    return trainer_step(Path(cfg["llamafactory"]["output_dir"])) or 0


def checkpoints(cfg: dict[str, Any], stage_dir: Path) -> list[tuple[int, Path]]:
    return trainer_checkpoints(Path(cfg["llamafactory"]["output_dir"]))


def export(cfg: dict[str, Any], stage_dir: Path, model_dir: Path | None = None) -> None:
    """LLaMA-Factory's final output (or checkpoint ``model_dir``) with the config made flat; a LoRA run's
    adapter is first merged into its base model (``llamafactory-cli export``), so the next stage and the
    evaluation load a full model."""
    output_dir = Path(cfg["llamafactory"]["output_dir"])
    if cfg["llamafactory"].get("finetuning_type") != "lora":
        export_trainer_output(output_dir, stage_dir, model_dir)
        return
    merged = stage_dir / "merged.tmp"
    merge_lora(cfg["llamafactory"], model_dir or output_dir, merged)
    try:
        export_trainer_output(output_dir, stage_dir, merged)
    finally:
        shutil.rmtree(merged, ignore_errors=True)


def merge_lora(args: dict[str, Any], adapter: Path, export_dir: Path) -> None:
    """``llamafactory-cli export``: the base model ``args["model_name_or_path"]`` with ``adapter`` merged,
    saved (model, tokenizer, processor) to ``export_dir``."""
    import yaml

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
