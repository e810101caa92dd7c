"""Stage recipes: compose a stage file with a budget, a size and a profile overlay, and validate the result.

Which stages, sizes, budgets and profiles exist is what ``recipes/`` holds (``tools.recipe.registry``).
``compose(stage, size, profile, overrides, budget)`` merges, in this order (later wins):

1. the stage file's ``defaults`` (base files such as ``recipes/stages/_sft.yaml``, themselves allowed to
   have ``defaults``), then ``recipes/stages/<stage>.yaml``;
2. ``recipes/budgets/<budget>.yaml`` (how long and in which batches each stage trains), then
   ``recipes/sizes/<size>.yaml``, then ``recipes/profiles/<profile>.yaml`` (so the cpu profile keeps its
   own short budget). An overlay may hold top-level keys, ``defaults`` (other overlays of its folder), a
   ``llamafactory:`` and an ``easyr1:`` section (only the one of the stage's engine is applied) and
   ``stages: {<stage>: {...}}`` for settings of one stage only, and a profile ``budgets: {<budget>: {...}}``
   for settings of one budget only (how a GPU count that the budget's batches do not divide keeps them valid);
3. dotlist ``overrides`` such as ``easyr1.trainer.max_steps=10``.

``vars:`` holds values several sections interpolate (``${vars.max_pixels}``: the one image pixel limit of
both engines); the resolved config (``to_container``, ``config.yaml``, its hash) leaves it out, as it leaves
out the registry's own keys (a stage's ``about:``, a profile's ``grpo_engine``, ...).

``tools.recipe.validate`` checks a composed recipe; ``tools.recipe.cli`` is ``pathvlm recipe``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tools.recipe import registry
from tools.recipe.registry import RecipeError

DEFAULT_BUDGET = "paper"
SECTIONS = ("llamafactory", "easyr1")  # the recipe sections a stage's `engine` names
DEFAULT_SIZE, DEFAULT_PROFILE = "7b", "h20x4"
VARS = "vars"
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


# ---------------------------------------------------------------------------------------------- compose


def stage_file(stage: str) -> Path:
    return registry.recipe_file("stages", stage)


def _overlay(
    path: Path, stage: str, engine: str, own_keys: tuple[str, ...] = (), budget: str | None = None
) -> list[DictConfig]:
    """The parts of a budget/size/profile overlay that apply to ``stage`` (run by ``engine``), in order,
    without the overlay's ``own_keys`` (what the registry reads, not the engines); with ``budget`` (profiles
    only) also its ``budgets.<budget>`` part."""
    cfg = registry.load_with_defaults(path)
    per_stage = cfg.pop("stages", None) or {}
    per_budget = (cfg.pop("budgets", None) or {}) if budget is not None else {}
    problems = [
        f"{key}.{name}: unknown {key[:-1]} (expected one of {known})"
        for key, part, known in (
            ("stages", per_stage, list(registry.stages())),
            ("budgets", per_budget, registry.budgets()),
        )
        for name in sorted(set(part) - set(known))
    ]
    if problems:
        raise RecipeError(str(path), problems)
    parts = [cfg, per_stage.get(stage) or OmegaConf.create({})]
    if budget is not None:
        parts.insert(1, per_budget.get(budget) or OmegaConf.create({}))
    for part in parts:
        for name in (*own_keys, *(s for s in SECTIONS if s != engine)):
            part.pop(name, None)
    return parts


def _choice(kind: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise RecipeError(f"{kind} {value!r}", [f"unknown {kind}; expected one of {allowed}"])


def compose(
    stage: str,
    size: str,
    profile: str,
    overrides: list[str] | None = None,
    budget: str = DEFAULT_BUDGET,
) -> DictConfig:
    """The recipe of ``stage`` for model ``size`` on hardware ``profile`` with training ``budget``,
    interpolations unresolved."""
    stages = registry.stages()
    _choice("stage", stage, list(stages))
    _choice("size", size, registry.sizes())
    _choice("profile", profile, registry.profiles())
    _choice("budget", budget, registry.budgets())
    engine = stages[stage].engine
    stage_cfg = registry.load_with_defaults(stage_file(stage))
    stage_cfg.pop(registry.ABOUT, None)
    layers = [
        OmegaConf.create({"stage": stage, "size": size, "profile": profile, "budget": budget}),
        stage_cfg,
        *_overlay(registry.recipe_file("budgets", budget), stage, engine),
        *_overlay(registry.recipe_file("sizes", size), stage, engine, registry.SIZE_KEYS),
        *_overlay(registry.recipe_file("profiles", profile), stage, engine, registry.PROFILE_KEYS, budget),
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


def stage_judge(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The ``judge`` settings of a composed stage config whose reward calls one (r1's); else None."""
    reward = (cfg.get("easyr1") or {}).get("worker", {}).get("reward", {})
    judge = (reward.get("reward_function_kwargs") or {}).get("judge")
    return dict(judge) if judge else None


def size_for(size: str | None, profile: str) -> str:
    """The size of a run of ``profile``: ``size``; if None, the profile's ``stand_in_size`` (cpu: tiny) or
    DEFAULT_SIZE. A profile with a stand-in size runs no other size (RecipeError), so its runs never land in
    ``runs/7b/`` nor in a paper-size report row."""
    stand_in = registry.profile(profile).stand_in_size
    if size is None:
        return stand_in or DEFAULT_SIZE
    if stand_in not in (None, size):
        raise RecipeError(
            f"--size {size} --profile {profile}",
            [
                f"profile {profile} runs only the stand-in model of size {stand_in} (stands in for "
                f"{registry.stands_in_for(stand_in)}): leave --size out or pass --size {stand_in} "
                f"(make: SIZE={stand_in} or no SIZE)"
            ],
        )
    return size


def judge_settings(size: str, profile: str, overrides: list[str] | None = None) -> dict[str, Any] | None:
    """The ``judge`` of the first stage whose reward calls one (r1's), composed; None where none does."""
    for name, info in registry.stages().items():
        if info.engine == "easyr1":
            judge = stage_judge(to_container(compose(name, size, profile, overrides)))
            if judge:
                return judge
    return None


def one_stage_per_engine() -> list[str]:
    """The first stage of each recipe section (alpha, beta): what evaluation reads training settings from
    before any stage has run."""
    stages = registry.stages()
    return [
        next(s for s, i in stages.items() if i.engine == sec)
        for sec in SECTIONS
        if sec in {i.engine for i in stages.values()}
    ]


def default_seed() -> int:
    """The recipe's own training seed (``seed`` in ``recipes/stages/_common.yaml``)."""
    return int(registry.load_yaml(stage_file("_common"))["seed"])


# ---------------------------------------------------------------------------------------------- output


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The composed config with every interpolation resolved (env defaults included), without ``vars``."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise RecipeError(f"recipe {cfg.get('stage')}", [f"cannot resolve: {exc}"]) from exc
    container.pop(VARS, None)
    return container


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


# Runtime settings: where to reach a service, not what trains. A local judge's URL holds its job's id (the
# port), so a resumed r1 beside a restarted judge job must keep its hash.
RUNTIME_KEYS = (("easyr1", "worker", "reward", "reward_function_kwargs", "judge", "base_url"),)


def config_hash(cfg: DictConfig) -> str:
    """sha256 (hex) of the resolved YAML without the runtime settings (``RUNTIME_KEYS``)."""
    hashed = OmegaConf.create(to_container(cfg))
    for path in RUNTIME_KEYS:
        parent = OmegaConf.select(hashed, ".".join(path[:-1]))
        if isinstance(parent, DictConfig) and path[-1] in parent:
            del parent[path[-1]]
    return hashlib.sha256(resolved_yaml(hashed).encode()).hexdigest()
