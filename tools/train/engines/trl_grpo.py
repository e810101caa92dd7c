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

import tools.common.wandb_first  # noqa: F401  (before torch and TRL)

# isort: split
import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import torch
import wandb
import yaml
from datasets import Dataset
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import GRPOConfig, GRPOTrainer

from rewards.trl import make_reward_funcs
from tools.common.grpo_rows import drop_overlong, load_rows
from tools.recipe.run import Run
from tools.train.engines.base import checkpoint_step, last_checkpoint, metric_name, params_line
from tools.train.engines.loss_guard import LossGuard, RewardWatch
from tools.train.engines.stop import StopAndSave
from tools.train.engines.trl import grpo_arguments, output_dir

# SLURM's warning (USR1) reaches the engine as the runner's stop file: a signal that arrived while the model
# loads, before the handler exists, would kill it. TERM (preempted) is caught: checkpoint, then stop.
STOP_SIGNALS = (signal.SIGTERM,)


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


class Trainer(GRPOTrainer):
    """Logs TRL's ``rewards/<name>/mean`` as ``reward/<name>`` (history, console and W&B alike)."""

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for metrics in self._metrics.values():
            for key in [k for k in metrics if metric_name(k) != k]:
                metrics[metric_name(key)] = metrics.pop(key)
        super().log(logs, start_time)


def train(cfg: dict[str, Any], config: Path) -> int:
    """Train from the resolved run config ``cfg`` (read from ``config``, whose folder holds the stop file)."""
    section = cfg["easyr1"]
    data, reward = section["data"], section["worker"]["reward"]
    model_path = section["worker"]["actor"]["model"]["model_path"]
    output = output_dir(cfg)
    args = GRPOConfig(
        **grpo_arguments(section, output, section["trainer"]["experiment_name"]),
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
            StopAndSave(Run.at(config.parent).stop, STOP_SIGNALS),
            LossGuard(cfg["loss_guard_steps"], zero_loss_is_bad=False),
            RewardWatch(),
        ],
    )
    resume = last_checkpoint(output)
    if resume is not None:
        print(f"resuming from checkpoint {resume} (step {checkpoint_step(resume)})", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.save_model(str(output))
    processor.save_pretrained(str(output))
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
    return train(cfg, args.config)


if __name__ == "__main__":
    sys.exit(main())
