"""The `pathvlm` command line: one entry point, one module per subcommand.

Each module listed in SUBCOMMAND_MODULES defines ``register(subparsers)``, which adds its parser(s)
and sets ``func`` (called with the parsed arguments; returns the process exit code). Modules import
their heavy dependencies (torch, transformers, ...) inside ``func`` so ``pathvlm --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = [
    "tools.tiny_model",
    "tools.evaluate",
    "tools.report",
    "tools.data.cli",
    "tools.judge_server",
    "tools.judge_cli",
    "tools.models",
    "tools.judge_eval",
    "tools.recipes",
    "tools.profile_args",
    "tools.runner",
    "tools.smoke",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pathvlm",
        description="PathVLM-R1 recipes: data conversion, stage runner, evaluation, report.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
