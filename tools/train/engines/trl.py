"""The TRL GRPO engine of the cpu profile (``grpo_engine: trl``): the run's resolved ``config.yaml`` is its
file, ``python -m tools.train.engines.trl_grpo`` trains (see that module for the mapping of ``easyr1:`` keys
to ``GRPOConfig``, ``grpo_arguments`` here)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.recipe.checks.trl import LOSS_TYPES
from tools.train.engines.base import TrainerEngine
from tools.train.engines.easyr1 import fill_easyr1


class TrlGrpo(TrainerEngine):
    name = "trl_grpo"
    config_name = "config.yaml"  # reads the whole resolved run config
    fill = staticmethod(fill_easyr1)

    @property
    def output_dir(self) -> Path:
        return output_dir(self.cfg)

    def engine_file(self, fitted: Mapping[str, Any]) -> dict[str, Any]:
        return self.cfg

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tools.train.engines.trl_grpo", str(self.run.config)]


def output_dir(cfg: Mapping[str, Any]) -> Path:
    """Where the Trainer saves its checkpoints and final model: ``easyr1.trainer.save_checkpoint_path``."""
    return Path(cfg["easyr1"]["trainer"]["save_checkpoint_path"])


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
