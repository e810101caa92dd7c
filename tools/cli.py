"""The `pathvlm` command line: one entry point, one module per subcommand.

Each module in COMMANDS defines ``register(subparsers)``, which adds its parser(s) and sets ``func``
(called with the parsed arguments; returns the process exit code). Only the module of the command being
run is imported (``pathvlm --help`` lists the commands from COMMANDS alone), and modules import their heavy
dependencies (torch, transformers, ...) inside ``func``.

Errors a user can fix never end in a traceback: ``main`` prints one line for a ``UserError``, a
``SystemExit`` with a message, a failed step run as its own process and a file-system fault naming its
file (read-only, full, no permission), each with exit code 2; Ctrl-C prints one line and exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import subprocess
import sys

from tools.common.errors import UserError, is_user_fault, os_error_line

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
RESUMABLE = ("run", "eval", "eval-all", "judge-eval", "smoke")  # commands that resume where they stopped

# command -> (the module that registers it, its line in `pathvlm --help`; a test keeps both in step)
COMMANDS = {
    "tiny-model": (
        "tools.dev.tiny_model",
        "build the tiny offline Qwen2.5-VL used by tests and the CPU smoke pipeline",
    ),
    "eval": ("tools.evaluation.cli", "evaluate one model on eval JSONL files"),
    "eval-all": (
        "tools.evaluation.cli",
        "evaluate every finished stage model and the base model of a size",
    ),
    "report": ("tools.report.cli", "tables 1-3 next to the paper's, McNemar tests, plots, W&B"),
    "data": ("tools.data.cli", "convert PathMMU / OmniMedVQA, generate synthetic data, check outputs"),
    "judge-server": (
        "tools.dev.judge_server",
        "fake OpenAI-compatible judge on 127.0.0.1 (tests, smoke, benchmarks)",
    ),
    "judge": (
        "tools.train.judge_cli",
        "the process-reward judge: cost estimate, one real call, agreement of two judges",
    ),
    "models": (
        "tools.train.models",
        "download a size's base model (and a self-hosted judge model) into the Hugging Face cache",
    ),
    "judge-eval": (
        "tools.evaluation.judge_eval",
        "judge the reasoning of every test output (judged.jsonl beside items.jsonl)",
    ),
    "recipe": ("tools.recipe.cli", "print a composed stage recipe and validate it"),
    "profile-args": (
        "tools.train.profile_args",
        "print the sbatch options (GPUs, CPUs, memory) a hardware profile asks for",
    ),
    "run": (
        "tools.train.runner",
        "train one pipeline stage (alpha, beta, r1, gamma, delta, epsilon) and export its model",
    ),
    "smoke": (
        "tools.dev.smoke",
        "the whole pipeline on CPU: tiny model, synthetic data, fake judge (make smoke)",
    ),
    "preflight": (
        "tools.preflight",
        "prove the cluster path in minutes: host, models, W&B, judge, SFT, GRPO + resume, eval",
    ),
}


# Commands a development module adds under another module's command (``register`` returns its subparsers).
NESTED_MODULES = {"tools.data.cli": ["tools.dev.synth"]}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command (``command`` None), or of ``command`` alone beside a help-only entry
    for each other command ("": help-only entries only, for ``pathvlm --help``)."""
    parser = argparse.ArgumentParser(
        prog="pathvlm",
        description="PathVLM-R1 recipes: data conversion, stage runner, evaluation, report.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = dict.fromkeys(
        module for name, (module, _) in COMMANDS.items() if command is None or name == command
    )
    for module in modules:
        commands = importlib.import_module(module).register(subparsers)
        for child in NESTED_MODULES.get(module, []):
            importlib.import_module(child).register(commands)
    for name, (_, help_line) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else "").parse_args(argv)
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
    except subprocess.CalledProcessError as error:  # a step run as its own process (smoke, exports)
        command = shlex.join(map(str, error.cmd)) if isinstance(error.cmd, list) else str(error.cmd)
        return _error(f"{command} exited with code {error.returncode} (its output above says why)")
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
