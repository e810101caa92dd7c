"""Validate a composed recipe: the top level here, each engine section against its engine's own schema
(``tools.recipe.checks``: LLaMA-Factory's arguments, EasyR1's PPOConfig, and what the TRL engine honours).
Every problem is listed at once in one ``RecipeError``.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig

from rewards.judge.config import credentials_in_url
from tools.recipe import registry
from tools.recipe.checks import easyr1, llamafactory, trl
from tools.recipe.compose import SECTIONS, TOP_LEVEL_KEYS, to_container
from tools.recipe.registry import RecipeError

_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{20,}|ghp_[A-Za-z0-9]{20,}|[A-Za-z0-9+/_-]{40,})$"
)
_SECRET_KEY = re.compile(r"(api_key|apikey|token|secret|password)$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

# The check of each engine that may train a section: (section, profile's grpo_engine or None) -> check.
_CHECKS = {
    ("llamafactory", None): llamafactory.validate,
    ("easyr1", "easyr1"): easyr1.validate,
    ("easyr1", "trl"): trl.validate,
}


def section_check(container: dict[str, Any]):
    """The check of the engine that trains this composed config's section (the profile picks the GRPO one)."""
    section = container["engine"]
    grpo = registry.profile(container["profile"]).grpo_engine if section == "easyr1" else None
    return _CHECKS[(section, grpo)]


def validate(cfg: DictConfig) -> None:
    """Raise ``RecipeError`` listing every unknown or bad key of the composed config ``cfg``."""
    where = f"recipe {cfg.get('stage')}/{cfg.get('size')}/{cfg.get('profile')}/{cfg.get('budget')}"
    container = to_container(cfg)
    problems = _check_top_level(container)
    problems += [
        f"{path}: looks like a secret; keep keys in the environment" for path in find_secrets(container)
    ]
    section = container.get("engine")
    if section in SECTIONS and isinstance(container.get(section), dict):
        problems += [
            f"{section}.{p}" if p[0].islower() else f"{section}: {p}"
            for p in section_check(container)(container[section])
        ]
    if problems:
        raise RecipeError(where, problems)


def _check_top_level(container: dict[str, Any]) -> list[str]:
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
