"""Stage recipes: compose a stage file with a size and a profile overlay, and validate the result.

``compose(stage, size, profile, overrides, budget)`` merges, in this order (later wins):

1. the stage file's ``defaults`` (base files such as ``recipes/stages/_sft.yaml``, themselves allowed to
   have ``defaults``), then ``recipes/stages/<stage>.yaml``;
2. ``recipes/budgets/<budget>.yaml`` (how long and in which batches each stage trains), then
   ``recipes/sizes/<size>.yaml``, then ``recipes/profiles/<profile>.yaml`` (so the cpu profile keeps its
   own short budget). An overlay may hold top-level keys, ``defaults`` (other overlays of its folder), a
   ``llamafactory:`` and an ``easyr1:`` section (only the one of the stage's engine is applied) and
   ``stages: {<stage>: {...}}`` for settings of one stage only, and a profile ``budgets: {<budget>: {...}}``
   for settings of one budget only (how a GPU count that the budget's batches do not divide keeps them valid);
   the profile's ``slurm:`` block (job resources, ``tools/profile_args.py``) is not part of the recipe;
3. dotlist ``overrides`` such as ``easyr1.trainer.max_steps=10``.

``validate(cfg)`` checks the composed config against the engine's own schema: LLaMA-Factory 0.9.5's
argument dataclasses (``HfArgumentParser.parse_dict`` with extra keys refused, as ``llamafactory-cli``
does) or EasyR1's ``PPOConfig`` (``OmegaConf.structured`` merge, as ``verl.trainer.main`` does), plus the
batch-size divisibility rules EasyR1 enforces when its trainer starts. Every problem is listed at once.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import io
import json
import os
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

REPO_ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = REPO_ROOT / "recipes"


@dataclass(frozen=True)
class StageInfo:
    engine: str  # "llamafactory" (SFT) or "easyr1" (GRPO)
    parent: str | None  # stage whose exported model this one starts from; None: the base model
    paper_steps: int | None  # training steps the paper gives (h20x4 profile), None where it gives none
    summary: str


STAGES: dict[str, StageInfo] = {
    "alpha": StageInfo("llamafactory", None, 18_000, "SFT of the base model on the sft split"),
    "beta": StageInfo("easyr1", "alpha", 2_000, "GRPO from alpha on the rl split, format + accuracy"),
    "r1": StageInfo("easyr1", "beta", 2_000, "GRPO from beta on the rl split, + judge process reward"),
    "gamma": StageInfo("llamafactory", "alpha", None, "control: SFT from alpha on the rl split"),
    "delta": StageInfo("llamafactory", None, None, "control: SFT from the base model on the rl split"),
    "epsilon": StageInfo("easyr1", None, None, "control: GRPO from the base model, format + accuracy"),
}
SIZES = ("7b", "3b")
PROFILES = ("h20x4", "cpu", "a100x8", "h100x8", "lean")
BUDGETS = ("paper", "fast")
DEFAULT_BUDGET = "paper"
ENGINES = ("llamafactory", "easyr1")
TOP_LEVEL_KEYS = (
    "stage",
    "size",
    "profile",
    "gpus_per_node",
    "budget",
    "engine",
    "parent",
    "experiment",
    "base_model",
    "seed",
    "loss_guard_steps",
    "selection_max_new_tokens",
)
# Declared by every profile (issue 13 makes them required and the code read them): GRPO engine, eval backend.
PROFILE_CHOICES = {"grpo_engine": ("easyr1", "trl"), "eval_backend": ("vllm", "hf")}

# Keys that depend on the machine running validation, not on the recipe: LLaMA-Factory/transformers refuse
# bf16 on a CPU and turn DeepSpeed on process-wide when they parse it, so they are checked on their own.
_LF_HARDWARE_KEYS = ("bf16", "fp16", "tf32", "deepspeed")
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{20,}|ghp_[A-Za-z0-9]{20,}|[A-Za-z0-9+/_-]{40,})$"
)
_SECRET_KEY = re.compile(r"(api_key|apikey|token|secret|password)$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class RecipeError(ValueError):
    """A recipe that cannot be composed or does not validate; the message lists every problem."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        super().__init__(f"{where}:\n" + "\n".join(f"  - {p}" for p in problems))


# ---------------------------------------------------------------------------------------------- compose


def stage_file(stage: str) -> Path:
    return RECIPES_DIR / "stages" / f"{stage}.yaml"


def _load(path: Path) -> DictConfig:
    if not path.is_file():
        raise RecipeError(str(path), ["file not found"])
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors carry the line number
        raise RecipeError(str(path), [f"not valid YAML: {exc}"]) from exc
    if not isinstance(cfg, DictConfig):
        raise RecipeError(str(path), ["expected a mapping at the top level"])
    return cfg


def _load_with_defaults(path: Path, seen: tuple[Path, ...] = ()) -> DictConfig:
    """A stage file merged over its ``defaults`` (base files in the same folder, without .yaml)."""
    if path in seen:
        raise RecipeError(str(path), ["circular defaults: " + " -> ".join(p.name for p in (*seen, path))])
    cfg = _load(path)
    defaults = cfg.pop("defaults", [])
    if isinstance(defaults, str) or not all(isinstance(d, str) for d in defaults):
        raise RecipeError(str(path), ["`defaults` must be a list of base file names, e.g. [_sft]"])
    bases = [_load_with_defaults(path.parent / f"{name}.yaml", (*seen, path)) for name in defaults]
    return OmegaConf.merge(*bases, cfg) if bases else cfg


def _overlay(path: Path, stage: str, engine: str, budget: str | None = None) -> list[DictConfig]:
    """The parts of a budget/size/profile overlay that apply to ``stage`` (run by ``engine``), in order;
    with ``budget`` (profiles only) also its ``budgets.<budget>`` part, and without its ``slurm`` block."""
    cfg = _load_with_defaults(path)
    per_stage = cfg.pop("stages", None) or {}
    per_budget = (cfg.pop("budgets", None) or {}) if budget is not None else {}
    if budget is not None:
        cfg.pop("slurm", None)
    problems = [
        f"{key}.{name}: unknown {key[:-1]} (expected one of {list(known)})"
        for key, part, known in (("stages", per_stage, STAGES), ("budgets", per_budget, BUDGETS))
        for name in sorted(set(part) - set(known))
    ]
    if problems:
        raise RecipeError(str(path), problems)
    parts = [cfg, per_stage.get(stage) or OmegaConf.create({})]
    if budget is not None:
        parts.insert(1, per_budget.get(budget) or OmegaConf.create({}))
    other = [e for e in ENGINES if e != engine]
    for part in parts:
        for name in other:
            part.pop(name, None)
    return parts


def _choice(kind: str, value: str, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        raise RecipeError(f"{kind} {value!r}", [f"unknown {kind}; expected one of {list(allowed)}"])


def compose(
    stage: str,
    size: str,
    profile: str,
    overrides: list[str] | None = None,
    budget: str = DEFAULT_BUDGET,
) -> DictConfig:
    """The recipe of ``stage`` for model ``size`` on hardware ``profile`` with training ``budget``,
    interpolations unresolved."""
    _choice("stage", stage, list(STAGES))
    _choice("size", size, SIZES)
    _choice("profile", profile, PROFILES)
    _choice("budget", budget, BUDGETS)
    engine = STAGES[stage].engine
    layers = [
        OmegaConf.create({"stage": stage, "size": size, "profile": profile, "budget": budget}),
        _load_with_defaults(stage_file(stage)),
        *_overlay(RECIPES_DIR / "budgets" / f"{budget}.yaml", stage, engine),
        *_overlay(RECIPES_DIR / "sizes" / f"{size}.yaml", stage, engine),
        *_overlay(RECIPES_DIR / "profiles" / f"{profile}.yaml", stage, engine, budget),
    ]
    try:
        if overrides:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        cfg = OmegaConf.merge(*layers)
    except OmegaConfBaseException as exc:
        raise RecipeError(f"recipe {stage}/{size}/{profile}", [str(exc)]) from exc
    for key, want in (("stage", stage), ("size", size), ("profile", profile), ("budget", budget)):
        if cfg.get(key) != want:
            raise RecipeError(
                f"recipe {stage}/{size}/{profile}", [f"{key} is {cfg.get(key)!r}, expected {want!r}"]
            )
    return cfg


def default_seed() -> int:
    """The recipe's own training seed (``seed`` in ``recipes/stages/_common.yaml``)."""
    return int(_load(RECIPES_DIR / "stages" / "_common.yaml")["seed"])


# ---------------------------------------------------------------------------------------------- output


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The composed config with every interpolation resolved (env defaults included)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise RecipeError(f"recipe {cfg.get('stage')}", [f"cannot resolve: {exc}"]) from exc


class _YamlDumper(yaml.SafeDumper):
    """PyYAML's own float format, whatever else the process registered on ``yaml.Dumper``."""


_YamlDumper.add_representer(float, yaml.representer.SafeRepresenter.represent_float)


def resolved_yaml(cfg: DictConfig) -> str:
    """Resolved YAML, keys in file order: what the runner saves as ``runs/<size>/<stage>/config.yaml``.

    Not ``OmegaConf.to_yaml``: that dumper inherits ``yaml.Dumper``'s representers, and importing EasyR1
    (``verl.utils.py_functional``) registers one there that rounds floats to 3 decimals (0.0001 -> 0.0).
    """
    return yaml.dump(
        to_container(cfg), Dumper=_YamlDumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def config_hash(cfg: DictConfig) -> str:
    """sha256 (hex) of the resolved YAML."""
    return hashlib.sha256(resolved_yaml(cfg).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- validate


def validate(cfg: DictConfig) -> None:
    """Raise ``RecipeError`` listing every unknown or bad key of the composed config ``cfg``."""
    where = f"recipe {cfg.get('stage')}/{cfg.get('size')}/{cfg.get('profile')}/{cfg.get('budget')}"
    container = to_container(cfg)
    problems = _check_top_level(container)
    problems += [
        f"{path}: looks like a secret; keep keys in the environment" for path in find_secrets(container)
    ]
    engine = container.get("engine")
    if engine in ENGINES and isinstance(container.get(engine), dict):
        check = _check_llamafactory if engine == "llamafactory" else _check_easyr1
        problems += [
            f"{engine}.{p}" if p[0].islower() else f"{engine}: {p}" for p in check(container[engine])
        ]
    if problems:
        raise RecipeError(where, problems)


def _check_top_level(container: dict[str, Any]) -> list[str]:
    problems = []
    stage, engine = container.get("stage"), container.get("engine")
    allowed = set(TOP_LEVEL_KEYS) | set(PROFILE_CHOICES) | ({engine} if engine in ENGINES else set())
    problems += [
        f"{key}: unknown top-level key (expected {sorted(allowed)})"
        for key in container
        if key not in allowed
    ]
    problems += [
        f"{key}: missing" for key in (*TOP_LEVEL_KEYS, engine) if key is not None and key not in container
    ]
    if engine not in ENGINES:
        problems.append(f"engine: {engine!r}, expected one of {list(ENGINES)}")
    if stage in STAGES:
        info = STAGES[stage]
        if engine != info.engine:
            problems.append(f"engine: {engine!r}, stage {stage} runs on {info.engine!r}")
        if container.get("parent", info.parent) != info.parent:
            problems.append(f"parent: {container.get('parent')!r}, stage {stage} starts from {info.parent!r}")
    for key, choices in PROFILE_CHOICES.items():
        if key in container and container[key] not in choices:
            problems.append(f"{key}: {container[key]!r}, expected one of {list(choices)}")
    for key in ("experiment", "base_model"):
        if key in container and not (isinstance(container[key], str) and container[key]):
            problems.append(f"{key}: expected a non-empty string")
    for key, low in (
        ("seed", 0),
        ("gpus_per_node", 0),
        ("loss_guard_steps", 1),
        ("selection_max_new_tokens", 1),
    ):
        value = container.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"{key}: {value!r}, expected an integer >= {low}")
    return problems


def find_secrets(node: Any, path: str = "") -> list[str]:
    """Dotted paths of values that look like credentials (key-like strings, URLs carrying credentials, set
    ``*api_key``/``*token``)."""
    from rewards.judge.config import credentials_in_url

    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if _SECRET_KEY.search(str(key)) and value not in (None, "", False):
                found.append(child)
            elif str(key).endswith("_env") and isinstance(value, str) and not _ENV_NAME.match(value):
                found.append(child)  # *_env must name a variable, not hold its value
            else:
                found += find_secrets(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += find_secrets(value, f"{path}[{i}]")
    elif isinstance(node, str) and (
        (_SECRET_VALUE.match(node) and "/" not in node) or credentials_in_url(node)
    ):
        found.append(path)  # a key-like string, or a URL with user:password@ or a key in its query
    return found


# -- LLaMA-Factory -------------------------------------------------------------------------------------


def _check_llamafactory(args: dict[str, Any]) -> list[str]:
    """LLaMA-Factory 0.9.5 train arguments: its own dataclasses, extra keys refused (as llamafactory-cli)."""
    from llamafactory.hparams.parser import _TRAIN_ARGS
    from transformers import HfArgumentParser

    known = {f.name for cls in _TRAIN_ARGS for f in dataclasses.fields(cls) if f.init}
    problems = [
        f"{key}: unknown key (not a LLaMA-Factory 0.9.5 train argument)" for key in args if key not in known
    ]
    if problems:
        return problems
    problems = _check_types(args, _TRAIN_ARGS)
    problems += _check_deepspeed(args.get("deepspeed"))
    for key in ("bf16", "fp16", "tf32"):
        if args.get(key) not in (None, True, False):
            problems.append(f"{key}: {args[key]!r}, expected true or false")
    from llamafactory.data.template import TEMPLATES

    if args.get("template") not in TEMPLATES:
        problems.append(
            f"template: {args.get('template')!r} is not a LLaMA-Factory template (e.g. 'qwen2_vl')"
        )
    if args.get("stage") != "sft":
        problems.append(
            f"stage: {args.get('stage')!r}, expected 'sft' (SFT stages only run on LLaMA-Factory)"
        )
    parse_args = {k: v for k, v in args.items() if k not in _LF_HARDWARE_KEYS}
    parse_args.setdefault("output_dir", "runs/_validate")  # filled in by the runner
    try:
        with _quiet():
            HfArgumentParser(_TRAIN_ARGS).parse_dict(parse_args, allow_extra_keys=False)
    except (ValueError, TypeError, AssertionError) as exc:
        problems.append(f"LLaMA-Factory rejects the arguments: {str(exc).strip().splitlines()[0]}")
    return problems


def _check_deepspeed(path: Any) -> list[str]:
    if path is None:
        return []
    file = Path(path) if Path(path).is_absolute() else REPO_ROOT / path
    try:
        ds = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        return [f"deepspeed: {path} is not a readable JSON file ({exc})"]
    if not isinstance(ds.get("zero_optimization"), dict):
        return [f"deepspeed: {path} has no zero_optimization section"]
    return []


def _check_types(args: dict[str, Any], classes: list[type]) -> list[str]:
    """Value types against the dataclass annotations (parse_dict itself does not convert or check them)."""
    hints: dict[str, Any] = {}
    for cls in classes:
        hints.update({f.name: f.type for f in dataclasses.fields(cls)})
        with contextlib.suppress(Exception):
            hints.update(typing.get_type_hints(cls))
    problems = []
    for key, value in args.items():
        if key in hints and value is not None and not _matches(value, hints[key]):
            problems.append(f"{key}: {value!r} does not match type {_type_name(hints[key])}")
    return problems


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, str) or origin in (dict, list, tuple) or hint in (dict, list):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint) if arg is not type(None))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and issubclass(hint, str):  # str-valued enums accept their values
        return isinstance(value, str)
    return True  # other annotations: left to the engine


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


# -- EasyR1 ---------------------------------------------------------------------------------------------


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


def _check_easyr1(section: dict[str, Any]) -> list[str]:
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
    reward = config.worker.reward
    problems = _easyr1_rules(config) + _check_reward(reward.reward_function, reward.reward_function_kwargs)
    if section.get("data", {}).get("format_prompt") is not None:
        problems.append("data.format_prompt: must be null (tools/prompt.py already wrote the prompt)")
    try:
        with _quiet():
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
    path = Path(file) if Path(file).is_absolute() else REPO_ROOT / file
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
        from rewards.judge import JudgeConfig

        try:
            JudgeConfig.from_dict(kwargs["judge"])
        except (ValueError, TypeError) as exc:
            problems.append(f"worker.reward.reward_function_kwargs.judge: {exc}")
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


def _easyr1_rules(config: Any) -> list[str]:
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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what engines print while parsing (e.g. EasyR1's 'file not found') and undo the environment
    variables they set (transformers' TrainingArguments exports ACCELERATE_MIXED_PRECISION)."""
    saved = dict(os.environ)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


# ---------------------------------------------------------------------------------------------- CLI


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recipe",
        help="print a composed stage recipe and validate it",
        description="Compose recipes/stages/STAGE.yaml with a budget, a size and a profile overlay, validate "
        "it against the engine's own schema, and print the resolved YAML (or its hash).",
    )
    add_recipe_arguments(parser)
    parser.add_argument("--hash", action="store_true", help="print only the config hash")
    parser.set_defaults(func=_main)


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """STAGE, --size, --profile, --budget and --set: how `pathvlm recipe` and `pathvlm run` pick a recipe."""
    parser.add_argument("stage", choices=list(STAGES), help="the pipeline stage")
    add_recipe_options(parser)


def add_recipe_options(parser: argparse.ArgumentParser, budget: bool = True) -> None:
    """--size, --profile, (--budget) and --set of a recipe whose stage the command fixes or takes."""
    parser.add_argument("--size", default="7b", choices=SIZES, help="model size overlay (default: 7b)")
    parser.add_argument(
        "--profile", default="h20x4", choices=PROFILES, help="hardware overlay (default: h20x4)"
    )
    if budget:
        parser.add_argument(
            "--budget",
            default=DEFAULT_BUDGET,
            choices=BUDGETS,
            help=f"training budget overlay, recipes/budgets/ (default: {DEFAULT_BUDGET}; the cpu profile "
            "keeps its own short budget)",
        )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override recipe keys, e.g. --set easyr1.trainer.max_steps=10 llamafactory.max_steps=5",
    )


def _main(args: argparse.Namespace) -> int:
    try:
        cfg = compose(args.stage, args.size, args.profile, args.overrides, args.budget)
        validate(cfg)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(config_hash(cfg) if args.hash else resolved_yaml(cfg), end="\n" if args.hash else "")
    return 0
