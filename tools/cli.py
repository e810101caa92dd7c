"""The `pathvlm` command line: one entry point, one module per subcommand.

Each module listed in SUBCOMMAND_MODULES defines ``register(subparsers)``, which adds its parser(s)
and sets ``func`` (called with the parsed arguments; returns the process exit code). Modules import
their heavy dependencies (torch, transformers, ...) inside ``func`` so ``pathvlm --help`` stays fast.

Errors a user can fix never end in a traceback: ``main`` prints one line for a ``UserError``, a
``SystemExit`` with a message and a file-system fault naming its file (read-only, full, no permission),
each with exit code 2; Ctrl-C prints one line and exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from tools.common.errors import UserError, is_user_fault, os_error_line

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
RESUMABLE = ("run", "eval", "eval-all", "judge-eval", "smoke")  # commands that resume where they stopped

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
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        resume = "; run the same command again to resume" if args.command in RESUMABLE else ""
        print(f"\n{args.command}: interrupted (Ctrl-C){resume}", file=sys.stderr)
        return INTERRUPTED
    except SystemExit as exit_:
        if not isinstance(exit_.code, str):
            raise
        raise ErrorExit(exit_.code) from None
    except UserError as error:
        return _error(str(error))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:  # a reader that did not name its file
        return _error(f"a file this command reads is not UTF-8 JSON ({error}): restore or regenerate it")
    except OSError as error:
        if not is_user_fault(error):
            raise
        return _error(os_error_line(error))


class ErrorExit(SystemExit):
    """Exit code 2 after the message's ``error:`` line (``str()`` is the message, for in-process callers)."""

    def __init__(self, message: str) -> None:
        _error(message)
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _error(message: str) -> int:
    """One ``error:`` line (a message listing several problems keeps its lines) and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
