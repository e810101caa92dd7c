"""``pathvlm recipe``: print a composed stage recipe (or its hash) after validating it, and the recipe
arguments other commands share (STAGE, --size, --profile, --budget, --set) and the size a profile implies."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from tools.recipe import registry
from tools.recipe.compose import (
    DEFAULT_BUDGET,
    DEFAULT_PROFILE,
    DEFAULT_SIZE,
    compose,
    config_hash,
    resolved_yaml,
    size_for,
)
from tools.recipe.registry import RecipeError
from tools.recipe.validate import validate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recipe",
        help="print a composed stage recipe and validate it",
        description="Compose recipes/stages/STAGE.yaml with a budget, a size and a profile overlay, validate "
        "it against the engine's own schema, and print the resolved YAML (or its hash).",
    )
    add_recipe_arguments(parser)
    parser.add_argument("--hash", action="store_true", help="print only the config hash")
    parser.set_defaults(func=with_profile_size(_main))


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


def with_profile_size(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` of a parser with --size and --profile, run with ``args.size`` defaulted from the profile
    (``size_for``: cpu -> tiny; a stand-in profile refuses another size). An unknown profile is left to the
    command's own check."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        if args.profile in registry.profiles():
            args.size = size_for(args.size, args.profile)
        return command(args)

    return run


def _main(args: argparse.Namespace) -> int:
    try:
        cfg = compose(args.stage, args.size, args.profile, args.overrides, args.budget)
        validate(cfg)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(config_hash(cfg) if args.hash else resolved_yaml(cfg), end="\n" if args.hash else "")
    return 0
