"""Stage recipes: compose a stage file with a budget, a size and a profile overlay, and validate the result.

Which stages, sizes, budgets and profiles exist is what ``recipes/`` holds (``tools.train.registry``).
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

``validate(cfg)`` checks the top level here and hands each engine section to the engine that runs it
(``tools.train.engines``: each engine module validates its own section against the engine's own schema and
refuses keys it cannot honour). Every problem is listed at once.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rewards.judge.config import credentials_in_url
from tools.common.errors import UserError
from tools.train import registry

DEFAULT_BUDGET = "paper"
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

_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{20,}|ghp_[A-Za-z0-9]{20,}|[A-Za-z0-9+/_-]{40,})$"
)
_SECRET_KEY = re.compile(r"(api_key|apikey|token|secret|password)$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class RecipeError(UserError, ValueError):
    """A recipe that cannot be composed or does not validate; the message lists every problem."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        super().__init__(f"{where}:\n" + "\n".join(f"  - {p}" for p in problems))


# ---------------------------------------------------------------------------------------------- compose


def stage_file(stage: str) -> Path:
    return registry.recipe_file("stages", stage)


def _overlay(
    path: Path, stage: str, engine: str, own_keys: tuple[str, ...] = (), budget: str | None = None
) -> list[DictConfig]:
    """The parts of a budget/size/profile overlay that apply to ``stage`` (run by ``engine``), in order,
    without the overlay's ``own_keys`` (what the registry reads, not the engines); with ``budget`` (profiles
    only) also its ``budgets.<budget>`` part."""
    from tools.train.engines import SECTIONS

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
    from tools.train.engines import SECTIONS

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


# ---------------------------------------------------------------------------------------------- validate


def validate(cfg: DictConfig) -> None:
    """Raise ``RecipeError`` listing every unknown or bad key of the composed config ``cfg``."""
    from tools.train import engines

    where = f"recipe {cfg.get('stage')}/{cfg.get('size')}/{cfg.get('profile')}/{cfg.get('budget')}"
    container = to_container(cfg)
    problems = _check_top_level(container)
    problems += [
        f"{path}: looks like a secret; keep keys in the environment" for path in find_secrets(container)
    ]
    section = container.get("engine")
    if section in engines.SECTIONS and isinstance(container.get(section), dict):
        engine = engines.for_config(container)
        problems += [
            f"{section}.{p}" if p[0].islower() else f"{section}: {p}"
            for p in engine.validate(container[section])
        ]
    if problems:
        raise RecipeError(where, problems)


def _check_top_level(container: dict[str, Any]) -> list[str]:
    from tools.train.engines import SECTIONS

    problems = []
    stage, engine = container.get("stage"), container.get("engine")
    allowed = set(TOP_LEVEL_KEYS) | ({engine} if engine in SECTIONS else set())
    problems += [
        f"{key}: unknown top-level key (expected {sorted(allowed)})"
        for key in container
        if key not in allowed
    ]
    problems += [
        f"{key}: missing" for key in (*TOP_LEVEL_KEYS, engine) if key is not None and key not in container
    ]
    if engine not in SECTIONS:
        problems.append(f"engine: {engine!r}, expected one of {list(SECTIONS)}")
    stages = registry.stages()
    if stage in stages:
        info = stages[stage]
        if engine != info.engine:
            problems.append(f"engine: {engine!r}, stage {stage} runs on {info.engine!r}")
        if container.get("parent", info.parent) != info.parent:
            problems.append(f"parent: {container.get('parent')!r}, stage {stage} starts from {info.parent!r}")
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
    parser.add_argument("stage", choices=list(registry.stages()), help="the pipeline stage (recipes/stages/)")
    add_recipe_options(parser)


def add_recipe_options(parser: argparse.ArgumentParser, budget: bool = True) -> None:
    """--size, --profile, (--budget) and --set of a recipe whose stage the command fixes or takes."""
    parser.add_argument(
        "--size",
        default=None,
        choices=registry.sizes(),
        help=f"model size overlay (default: {DEFAULT_SIZE}; a profile that runs only a stand-in model "
        "uses its size: cpu -> tiny)",
    )
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        choices=registry.profiles(),
        help=f"hardware overlay (default: {DEFAULT_PROFILE})",
    )
    if budget:
        parser.add_argument(
            "--budget",
            default=DEFAULT_BUDGET,
            choices=registry.budgets(),
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
