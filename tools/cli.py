"""The `pathvlm` command line: one entry point, one module per subcommand.

Each module listed in SUBCOMMAND_MODULES defines ``register(subparsers)``, which adds its parser(s)
and sets ``func`` (called with the parsed arguments; returns the process exit code). Modules import
their heavy dependencies (torch, transformers, ...) inside ``func`` so ``pathvlm --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tools.train import registry
from tools.train.recipes import RecipeError, size_for

SUBCOMMAND_MODULES = [
    "tools.dev.tiny_model",
    "tools.evaluation.evaluate",
    "tools.evaluation.report",
    "tools.data.cli",
    "tools.dev.judge_server",
    "tools.evaluation.judge_cli",
    "tools.train.models",
    "tools.evaluation.judge_eval",
    "tools.train.recipes",
    "tools.train.profile_args",
    "tools.train.runner",
    "tools.dev.smoke",
    "tools.preflight",
]


# Commands a development module adds under another module's command (``register`` returns its subparsers).
NESTED_MODULES = {"tools.data.cli": ["tools.dev.synth_cli"]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pathvlm",
        description="PathVLM-R1 recipes: data conversion, stage runner, evaluation, report.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        commands = importlib.import_module(name).register(subparsers)
        for child in NESTED_MODULES.get(name, []):
            importlib.import_module(child).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "size") and getattr(args, "profile", None) in registry.profiles():  # a recipe's
        try:
            args.size = size_for(args.size, args.profile)
        except RecipeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
