"""The stage roles the report needs, read from the stage files (``tools.recipe.registry``), never named
here: the learning chain follows ``parent``, GRPO vs SFT the ``engine``, the paired comparisons
``about.compare_with``."""

from __future__ import annotations

from tools.recipe.registry import StageInfo, stages
from tools.recipe.run import BASE


def _lineage(name: str, infos: dict[str, StageInfo]) -> list[str]:
    """``name`` and its ancestors, oldest first (``alpha, beta, r1`` for r1)."""
    line = [name]
    while infos[line[0]].parent in infos:
        line.insert(0, infos[line[0]].parent)
    return line


def chain() -> tuple[str, ...]:
    """The base model and the longest line of stages each starting from the one before (base, α, β, R1)."""
    infos = stages()
    longest = max((_lineage(name, infos) for name in infos), key=len, default=[])
    return (BASE, *longest)


def grpo_chain() -> tuple[str, ...]:
    """The GRPO stages of the chain (β, R1): the stages with reward curves in the learning section."""
    infos = stages()
    return tuple(name for name in chain() if name in infos and infos[name].is_grpo)


def comparisons() -> tuple[tuple[str, str], ...]:
    """The paper's paired comparisons (A, B) at one size: each stage's ``compare_with``, deepest first."""
    infos = stages()
    by_depth = sorted(infos, key=lambda name: -len(_lineage(name, infos)))
    return tuple((name, other) for name in by_depth for other in infos[name].compare_with)


def chain_steps() -> tuple[tuple[str, str], ...]:
    """Each GRPO stage of the chain and the stage it started from (R1, β), (β, α): deepest first."""
    names = chain()
    return tuple((stage, names[names.index(stage) - 1]) for stage in reversed(grpo_chain()))
