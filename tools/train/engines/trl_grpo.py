"""GRPO on CPU (or one device) with TRL 0.24's GRPOTrainer, driven by a stage's ``easyr1:`` keys.

EasyR1 needs CUDA and vLLM, so the cpu profile trains GRPO stages with TRL instead, from the same recipe keys
and the same reward functions (``rewards.trl``):

==========================================================  =============================================
``easyr1:`` key                                             GRPOConfig
==========================================================  =============================================
data.train_files (our EasyR1 JSONL, ``path[@split]``)       train dataset: ``prompt`` conversation, ``image``
                                                            (PIL, resized into data.min/max_pixels),
                                                            ``answer`` (passed to the reward functions)
data.max_prompt_length / max_response_length                max_prompt_length / max_completion_length
data.filter_overlong_prompts                                longer prompts are dropped (and counted)
data.rollout_batch_size / actor.global_batch_size           steps_per_generation (optimizer steps per
                                                            rollout batch); max_steps and save_steps are
                                                            EasyR1 steps times that
worker.rollout.n / temperature / top_p                      num_generations / temperature / top_p
worker.actor.micro_batch_size_per_device_for_update         per_device_train_batch_size (+ accumulation)
worker.actor.optim (lr, betas, weight_decay, warmup, sched)  learning_rate, adam_beta1/2, weight_decay, ...
worker.actor.clip_ratio_low / clip_ratio_high               epsilon / epsilon_high
worker.actor.loss_avg_mode (token | seq), ppo_epochs        loss_type (dapo | grpo), num_iterations
algorithm.kl_coef (0 when algorithm.disable_kl)             beta
trainer.max_steps (else total_epochs), save_freq/save_limit  max_steps (num_train_epochs), save_steps/limit
worker.reward.reward_function (+ _kwargs)                   reward_funcs and reward_weights
==========================================================  =============================================

The vision tower (``model.visual``) is frozen before training: TRL freezes nothing by itself. Checkpoints
go to ``trainer.save_checkpoint_path`` and a rerun resumes from the last complete one. Reward metrics are
logged as ``reward/<name>``. The loss guard (``engines.loss_guard``, K = ``loss_guard_steps``) stops a
diverged run. The final model, processor and trainer state are saved at the top of the checkpoint directory,
as LLaMA-Factory does, for the runner's export.

Usage: ``python -m tools.train.engines.trl_grpo runs/<size>/<stage>/config.yaml`` (the runner does this).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from tools.recipe.checks.trl import LOSS_TYPES
from tools.train.engines import (
    STOP_FILE,
    StopHandler,
    checkpoint_step,
    export_trainer_output,
    forward_signal,
    last_checkpoint,
    params_line,
    prepare_trainer_resume,
    request_stop_file,
    trainer_checkpoints,
    trainer_finished,
    trainer_step,
)
from tools.train.engines import easyr1 as _easyr1
from tools.common.grpo_rows import drop_overlong, load_rows

CONFIG_NAME = "config.yaml"  # reads the whole resolved stage config
LAUNCH_ENV: tuple[str, ...] = ()
# SLURM's warning (USR1) reaches the engine as the runner's stop file: a signal that arrived while the model
# loads, before the handler exists, would kill it. TERM (preempted) is caught: checkpoint, then stop.
STOP_SIGNALS = (signal.SIGTERM,)


def prepare(cfg: dict[str, Any], stage_dir: Path, init_model: str, run_name: str) -> None:
    _easyr1.prepare(cfg, stage_dir, init_model, run_name)


def engine_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg


def command(stage_dir: Path) -> list[str]:
    return [sys.executable, "-m", "tools.train.engines.trl_grpo", str(stage_dir / CONFIG_NAME)]


def finished(cfg: dict[str, Any], stage_dir: Path) -> bool:
    return trainer_finished(_output_dir(cfg))


def stop_handlers(cfg: dict[str, Any], stage_dir: Path) -> dict[int, StopHandler]:
    return {signal.SIGUSR1: request_stop_file(stage_dir / STOP_FILE), signal.SIGTERM: forward_signal}


def before_launch(cfg: dict[str, Any]) -> Path | None:
    return prepare_trainer_resume(_output_dir(cfg))


def trained_steps(cfg: dict[str, Any], stage_dir: Path) -> int:
    return trainer_step(_output_dir(cfg)) or 0


def checkpoints(cfg: dict[str, Any], stage_dir: Path) -> list[tuple[int, Path]]:
    return trainer_checkpoints(_output_dir(cfg))


def export(cfg: dict[str, Any], stage_dir: Path, model_dir: Path | None = None) -> None:
    export_trainer_output(_output_dir(cfg), stage_dir, model_dir)


def _output_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["easyr1"]["trainer"]["save_checkpoint_path"])


# ---------------------------------------------------------------------------------------------- mapping


def grpo_arguments(section: dict[str, Any], output_dir: Path, run_name: str) -> dict[str, Any]:
    """GRPOConfig keyword arguments from a validated ``easyr1:`` section (see the module docstring)."""
    data, algorithm, trainer = section["data"], section["algorithm"], section["trainer"]
    actor, rollout = section["worker"]["actor"], section["worker"]["rollout"]
    optim = actor["optim"]
    n = rollout["n"]
    prompts_per_update, prompts_per_rollout = actor["global_batch_size"], data["rollout_batch_size"]
    micro = actor["micro_batch_size_per_device_for_update"]  # the batches divide: validate() checked it
    accumulation = prompts_per_update * n // micro
    updates_per_rollout = prompts_per_rollout // prompts_per_update * actor.get("ppo_epochs", 1)
    save_freq = trainer.get("save_freq", -1)
    args: dict[str, Any] = {
        "output_dir": str(output_dir),
        "run_name": run_name,
        "report_to": ["wandb"] if "wandb" in trainer.get("logger", []) else [],
        "seed": data.get("seed", 1),
        "shuffle_dataset": data.get("shuffle", True),
        "max_prompt_length": data["max_prompt_length"],
        "max_completion_length": data["max_response_length"],
        "num_generations": n,
        "temperature": rollout.get("temperature", 1.0),
        "top_p": rollout.get("top_p", 1.0),
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": accumulation,
        "steps_per_generation": accumulation * prompts_per_rollout // prompts_per_update,
        "num_iterations": actor.get("ppo_epochs", 1),
        "learning_rate": optim["lr"],
        "weight_decay": optim.get("weight_decay", 0.0),
        "adam_beta1": optim.get("betas", (0.9, 0.999))[0],
        "adam_beta2": optim.get("betas", (0.9, 0.999))[1],
        "warmup_ratio": optim.get("lr_warmup_ratio", 0.0),
        "lr_scheduler_type": optim.get("lr_scheduler_type", "constant"),
        "max_grad_norm": actor.get("max_grad_norm", 1.0),
        "epsilon": actor.get("clip_ratio_low", 0.2),
        "epsilon_high": actor.get("clip_ratio_high", 0.2),
        "loss_type": LOSS_TYPES[actor.get("loss_avg_mode", "token")],
        "beta": 0.0 if algorithm.get("disable_kl") else algorithm["kl_coef"],
        "gradient_checkpointing": actor["model"].get("enable_gradient_checkpointing", False),
        "logging_steps": 1,
        "save_strategy": "steps" if save_freq > 0 else "no",
        "save_steps": max(save_freq, 1) * updates_per_rollout,
        "save_total_limit": trainer.get("save_limit") if (trainer.get("save_limit") or -1) > 0 else None,
        "bf16": False,
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
    }
    if trainer.get("max_steps") is not None:  # 0 is not "unset": EasyR1 would train 0 steps
        args["max_steps"] = trainer["max_steps"] * updates_per_rollout
    else:
        args["num_train_epochs"] = trainer["total_epochs"]
    return args


# ---------------------------------------------------------------------------------------------- train


def freeze_vision_tower(model: Any) -> tuple[int, int]:
    """Freeze ``model.visual``; returns (trainable, total) parameter counts."""
    visual = getattr(model, "visual", None)
    if visual is None:
        raise TypeError(f"{type(model).__name__} has no `visual` module: cannot freeze the vision tower")
    visual.requires_grad_(False)
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def vision_token_ids(config: Any) -> list[int]:
    """Image/video placeholder ids, which a policy must never generate: an untrained (tiny) model would, and
    the extra placeholders in its completion then no longer match the image features."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return sorted({getattr(config, name) for name in names if getattr(config, name, None) is not None})


def train(cfg: dict[str, Any]) -> int:
    import tools.common.wandb_first  # noqa: F401  (before torch and TRL)

    # isort: split
    import torch
    import wandb
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from rewards.trl import make_reward_funcs
    from tools.train.engines.loss_guard import LossGuard, RewardWatch
    from tools.train.engines.stop import StopAndSave

    class Trainer(GRPOTrainer):
        """Logs TRL's ``rewards/<name>/mean`` as ``reward/<name>`` (history, console and W&B alike)."""

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            from tools.train.engines import metric_name

            for metrics in self._metrics.values():
                for key in [k for k in metrics if metric_name(k) != k]:
                    metrics[metric_name(key)] = metrics.pop(key)
            super().log(logs, start_time)

    section = cfg["easyr1"]
    data, reward = section["data"], section["worker"]["reward"]
    model_path = section["worker"]["actor"]["model"]["model_path"]
    output_dir = _output_dir(cfg)
    args = GRPOConfig(
        **grpo_arguments(section, output_dir, section["trainer"]["experiment_name"]),
        use_cpu=not torch.cuda.is_available(),
    )
    processor = AutoProcessor.from_pretrained(model_path)
    rows = load_rows(data)
    if data.get("filter_overlong_prompts", True):
        rows = drop_overlong(rows, processor, data["max_prompt_length"])
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    print(params_line(*freeze_vision_tower(model)), flush=True)
    args.generation_kwargs = {"suppress_tokens": vision_token_ids(model.config)}
    kwargs = dict(reward.get("reward_function_kwargs") or {})
    funcs, weights = make_reward_funcs(reward["reward_function"], kwargs)
    args.reward_weights = weights
    if "wandb" in args.report_to:
        keys = ("stage", "size", "profile", "budget", "seed", "experiment", "run")
        wandb.init(config={"pathvlm": {k: cfg[k] for k in keys}})
    trainer = Trainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=processor,
        callbacks=[  # StopAndSave exits after the checkpoint, before the final save
            StopAndSave(STOP_SIGNALS),
            LossGuard(cfg["loss_guard_steps"], zero_loss_is_bad=False),
            RewardWatch(),
        ],
    )
    resume = last_checkpoint(output_dir)
    if resume is not None:
        print(f"resuming from checkpoint {resume} (step {checkpoint_step(resume)})", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.save_model(str(output_dir))
    processor.save_pretrained(str(output_dir))
    trainer.save_state()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.train.engines.trl_grpo",
        description="Train a GRPO stage with TRL from its resolved runs/<size>/<stage>/config.yaml.",
    )
    parser.add_argument("config", type=Path, help="the resolved stage config written by `pathvlm run`")
    args = parser.parse_args(argv)
    cfg = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    return train(cfg)


if __name__ == "__main__":
    sys.exit(main())
