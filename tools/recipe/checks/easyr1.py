"""Validation of a stage's ``easyr1:`` section against EasyR1's ``PPOConfig`` (``OmegaConf.structured``
merge, as ``verl.trainer.main`` does), plus what its trainer and workers would reject only after loading the
model: the batch-size divisibility rules (``batch_rules``, the one copy: the TRL engine checks the same), the
reward function and its keyword arguments.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import importlib.util
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rewards.judge import JudgeConfig
from rewards.judge.guard import JudgeGuard, guard_problems
from tools.common.paths import REPO_ROOT, repo_file
from tools.recipe.checks import quiet
from tools.recipe.checks.ranges import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    PIXELS,
    POSITIVE,
    Range,
    check,
    ordered,
)

_UNSET = Range(1, integer=True, unset=(-1,), note="-1: unset")
_JUDGE = "worker.reward.reward_function_kwargs.judge."
# Numeric keys checked by their own rule elsewhere: the judge guard (rewards.judge.guard.guard_problems).
OWN_RULE = (
    "worker.reward.reward_function_kwargs.judge_max_failure_rate",
    "worker.reward.reward_function_kwargs.judge_guard_steps",
)
# The range of every numeric key a recipe sets (tests/test_bad_inputs.py keeps this in step with recipes/).
RANGES = {
    "algorithm.kl_coef": NON_NEGATIVE,
    "algorithm.kl_horizon": POSITIVE,
    "algorithm.kl_target": NON_NEGATIVE,
    "algorithm.gamma": FRACTION,
    "algorithm.lam": FRACTION,
    "algorithm.filter_*": FRACTION,
    "data.max_pixels": PIXELS,
    "data.min_pixels": PIXELS,
    "data.max_prompt_length": COUNT,
    "data.max_response_length": COUNT,
    "data.rollout_batch_size": COUNT,
    "data.mini_rollout_batch_size": COUNT,
    "data.val_batch_size": _UNSET,
    "data.seed": NON_NEGATIVE_INT,
    "data.video_fps": POSITIVE,
    "data.filter_overlong_prompts_workers": COUNT,
    "trainer.max_steps": Range(1, integer=True, note="null: train trainer.total_epochs"),
    "trainer.total_epochs": COUNT,
    "trainer.save_freq": Range(1, integer=True, unset=(-1,), note="-1: only at the end"),
    "trainer.save_limit": _UNSET,
    "trainer.val_freq": _UNSET,
    "trainer.val_generations_to_log": NON_NEGATIVE_INT,
    "trainer.critic_warmup": NON_NEGATIVE_INT,
    "trainer.max_try_make_batch": _UNSET,
    "trainer.nnodes": COUNT,
    "trainer.n_gpus_per_node": COUNT,
    "worker.*.optim.lr": POSITIVE,
    "worker.*.optim.lr_warmup_ratio": FRACTION,
    "worker.*.optim.weight_decay": NON_NEGATIVE,
    "worker.*.max_grad_norm": POSITIVE,
    "worker.*.global_batch_size": COUNT,
    "worker.*.micro_batch_size_per_device_for_*": COUNT,
    "worker.*.ppo_epochs": COUNT,
    "worker.*.ulysses_size": COUNT,
    "worker.*.fsdp.fsdp_size": _UNSET,
    "worker.*.model.lora.rank": Range(0, integer=True, note="0: no LoRA"),
    "worker.*.model.lora.alpha": POSITIVE,
    "worker.actor.clip_ratio_low": POSITIVE,
    "worker.actor.clip_ratio_high": POSITIVE,
    "worker.actor.clip_ratio_dual": Range(1, low_open=True),
    "worker.actor.tau_*": POSITIVE,
    "worker.critic.cliprange_value": POSITIVE,
    "worker.reward.num_cpus": POSITIVE,
    "worker.reward.reward_function_kwargs.*_weight": NON_NEGATIVE,
    f"{_JUDGE}*_fallback_*": FRACTION,
    f"{_JUDGE}temperature": NON_NEGATIVE,
    f"{_JUDGE}concurrency": COUNT,
    f"{_JUDGE}max_retries": NON_NEGATIVE_INT,
    f"{_JUDGE}max_tokens": COUNT,
    f"{_JUDGE}*_s": POSITIVE,
    f"{_JUDGE}*_usd_per_mtok": NON_NEGATIVE,
    "worker.rollout.temperature": POSITIVE,
    "worker.rollout.val_override_config.temperature": Range(0, note="0: greedy"),
    "worker.rollout.val_override_config.n": COUNT,
    "worker.rollout.*top_p": Range(0, 1, low_open=True),
    "worker.rollout.top_k": _UNSET,
    "worker.rollout.n": COUNT,
    "worker.rollout.seed": NON_NEGATIVE_INT,
    "worker.rollout.gpu_memory_utilization": Range(0, 1, low_open=True),
    "worker.rollout.limit_images": NON_NEGATIVE_INT,
    "worker.rollout.max_num_batched_tokens": COUNT,
    "worker.rollout.tensor_parallel_size": COUNT,
}


def easyr1_config_class() -> type:
    """EasyR1's ``verl.trainer.config.PPOConfig``, importable without vLLM.

    ``verl.workers.rollout/__init__.py`` imports the vLLM rollout next to ``RolloutConfig``. Where vLLM is
    missing, a bare package module stands in for ``verl.workers.rollout`` while the config modules load, so
    ``verl.workers.rollout.config`` (pure dataclasses) is read from EasyR1's own file; the stand-in is
    removed afterwards, so a later ``import verl.workers.rollout`` behaves exactly as without this function.
    """
    with _yaml_representers_kept():
        if "verl.trainer.config" in sys.modules or importlib.util.find_spec("vllm") is not None:
            return importlib.import_module("verl.trainer.config").PPOConfig
        workers = importlib.import_module("verl.workers")
        name = "verl.workers.rollout"
        stand_in = types.ModuleType(name)
        stand_in.__path__ = [str(Path(workers.__path__[0]) / "rollout")]
        stand_in.__package__ = name
        sys.modules[name] = stand_in
        try:
            stand_in.RolloutConfig = importlib.import_module(f"{name}.config").RolloutConfig
            return importlib.import_module("verl.trainer.config").PPOConfig
        finally:
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
            if getattr(workers, "rollout", None) is stand_in:
                delattr(workers, "rollout")


def validate(section: dict[str, Any]) -> list[str]:
    """EasyR1's PPOConfig: unknown keys, auto keys, types (merged as verl.trainer.main does), batch rules."""
    ppo_config = easyr1_config_class()
    problems = list(_unknown_dataclass_keys(section, ppo_config))
    if problems:
        return problems
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ppo_config()), section)
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        message = str(exc).strip().splitlines()[0]
        return [f"{exc.full_key}: {message}" if getattr(exc, "full_key", None) else message]
    values = OmegaConf.to_container(merged)  # as EasyR1 converted them ("inf" -> inf)
    problems = check(values, RANGES, only=section) + ordered(values, "data.min_pixels", "data.max_pixels")
    if problems:
        return problems  # EasyR1's own rules below divide by these values
    reward = config.worker.reward
    problems = batch_rules(config) + _check_reward(reward.reward_function, reward.reward_function_kwargs)
    if section.get("data", {}).get("format_prompt") is not None:
        problems.append("data.format_prompt: must be null (tools/common/prompt.py already wrote the prompt)")
    try:
        with quiet():
            config.deep_post_init()
    except (ValueError, TypeError) as exc:
        problems.append(f"EasyR1 rejects the config: {exc}")
    return problems


def _check_reward(spec: str | None, kwargs: dict[str, Any]) -> list[str]:
    """``FILE:FUNCTION`` must exist (FILE relative to the repository root, where EasyR1 is launched) and
    accept ``reward_function_kwargs``; a ``judge`` entry must satisfy ``rewards.judge.JudgeConfig``.
    EasyR1 itself would only fail on these after loading the model."""
    where = "worker.reward.reward_function"
    if not spec:
        return [f"{where}: missing (expected ./rewards/easyr1.py:<function>)"]
    file, _, name = spec.rpartition(":") if ":" in spec else (spec, ":", "main")
    path = repo_file(file)
    if not path.is_file():
        return [f"{where}: {file} not found (relative to {REPO_ROOT})"]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    function = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if function is None:
        return [f"{where}: {file} defines no function {name!r}"]
    params = {a.arg for a in (*function.args.args[1:], *function.args.kwonlyargs)}
    problems = []
    if function.args.kwarg is None:
        problems += [
            f"worker.reward.reward_function_kwargs.{key}: not a parameter of {name} (has {sorted(params)})"
            for key in kwargs
            if key not in params
        ]
    if "judge" in kwargs:
        try:
            JudgeConfig.from_dict(kwargs["judge"])
        except (ValueError, TypeError) as exc:
            problems.append(f"worker.reward.reward_function_kwargs.judge: {exc}")
    # The judge guard's keys: its own rule (rewards.judge.guard), the one the EasyR1 worker applies too.
    rate = kwargs.get("judge_max_failure_rate", JudgeGuard.max_failure_rate)
    steps = kwargs.get("judge_guard_steps", JudgeGuard.steps)
    problems += [f"worker.reward.reward_function_kwargs.{p}" for p in guard_problems(rate, steps)]
    return problems


def _unknown_dataclass_keys(node: dict[str, Any], cls: type, path: str = "") -> Iterator[str]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in node.items():
        where = f"{path}{key}"
        field = fields.get(key)
        if field is None:
            known = sorted(n for n, f in fields.items() if f.init)
            yield f"{where}: unknown key (EasyR1 {cls.__name__} has {known})"
        elif not field.init:
            yield f"{where}: set by EasyR1 at run time (copied from another key), not a recipe key"
        elif dataclasses.is_dataclass(hints[key]):
            if isinstance(value, dict):
                yield from _unknown_dataclass_keys(value, hints[key], f"{where}.")
            else:
                yield f"{where}: expected a mapping ({hints[key].__name__}), got {value!r}"


def batch_rules(config: Any) -> list[str]:
    """What EasyR1's trainer and workers would reject at start-up (after loading the model), checked now."""
    data, worker, trainer = config.data, config.worker, config.trainer
    actor, rollout = worker.actor, worker.rollout
    world = trainer.nnodes * trainer.n_gpus_per_node
    responses = data.rollout_batch_size * rollout.n
    problems = []
    if config.algorithm.adv_estimator == "grpo" and rollout.n < 2:
        problems.append(f"worker.rollout.n: {rollout.n}, GRPO needs at least 2 rollouts per prompt")
    if data.rollout_batch_size % actor.global_batch_size:
        problems.append(
            f"data.rollout_batch_size {data.rollout_batch_size} is not divisible by "
            f"worker.actor.global_batch_size {actor.global_batch_size}"
        )
    batch = "data.rollout_batch_size*worker.rollout.n"
    if responses % actor.micro_batch_size_per_device_for_experience:
        problems.append(
            f"{batch} = {responses} is not divisible by worker.actor."
            f"micro_batch_size_per_device_for_experience {actor.micro_batch_size_per_device_for_experience}"
        )
    gpus = f"the {world} GPUs (trainer.nnodes {trainer.nnodes} x n_gpus_per_node {trainer.n_gpus_per_node})"
    for key, prompts in (
        ("data.rollout_batch_size", data.rollout_batch_size),
        ("data.mini_rollout_batch_size", data.mini_rollout_batch_size),
    ):  # each generation batch of prompts is split evenly across all GPUs (DataProto.chunk)
        if prompts is not None and prompts % world:
            problems.append(f"{key} {prompts} is not divisible by {gpus}: EasyR1 splits prompts evenly")
    if world % actor.ulysses_size:
        problems.append(f"worker.actor.ulysses_size {actor.ulysses_size} does not divide {gpus}")
    dp_size = max(world // actor.ulysses_size, 1)
    per_device = actor.global_batch_size * rollout.n // dp_size
    if per_device and (actor.global_batch_size * rollout.n) % dp_size:
        problems.append(
            f"worker.actor.global_batch_size*n = {actor.global_batch_size * rollout.n} is not divisible by "
            f"{dp_size} data-parallel GPUs: EasyR1 rounds the per-GPU update batch down to {per_device}"
        )
    if per_device == 0:
        problems.append(f"worker.actor.global_batch_size*n < {world} GPUs: nothing to train on some GPUs")
    elif per_device % actor.micro_batch_size_per_device_for_update:
        problems.append(
            f"worker.actor.global_batch_size*n per GPU = {per_device} is not divisible by "
            f"micro_batch_size_per_device_for_update {actor.micro_batch_size_per_device_for_update}"
        )
    elif actor.fsdp.enable_cpu_offload and per_device != actor.micro_batch_size_per_device_for_update:
        problems.append("worker.actor.fsdp.enable_cpu_offload: not allowed with gradient accumulation")
    if world % rollout.tensor_parallel_size:
        problems.append(
            f"worker.rollout.tensor_parallel_size: {rollout.tensor_parallel_size} does not divide the "
            f"{world} GPUs"
        )
    if (
        rollout.max_model_len is not None
        and rollout.max_model_len < data.max_prompt_length + data.max_response_length
    ):
        problems.append(
            "worker.rollout.max_model_len is shorter than max_prompt_length + max_response_length"
        )
    return problems


@contextlib.contextmanager
def _yaml_representers_kept() -> Iterator[None]:
    """Undo the float representer ``import verl`` registers on ``yaml.Dumper`` (it rounds 0.0001 to 0.0),
    so validating a recipe does not change how the rest of this process writes YAML."""
    had_own = "yaml_representers" in yaml.Dumper.__dict__
    saved = dict(yaml.Dumper.yaml_representers)
    try:
        yield
    finally:
        if had_own:
            yaml.Dumper.yaml_representers = saved
        elif "yaml_representers" in yaml.Dumper.__dict__:
            del yaml.Dumper.yaml_representers
