"""The job resources a hardware profile asks for: ``pathvlm profile-args --profile P``.

Every ``recipes/profiles/<name>.yaml`` declares ``gpus_per_node`` and a ``slurm:`` block (``cpus_per_task``,
``mem``). ``#SBATCH`` lines are static, so the sbatch scripts name no GPUs, CPUs or memory;
``slurm/submit.sh`` and ``slurm/pipeline.sh`` put these options before the user's own (a later sbatch
option wins), and the jobs check what they got (``--check``). The ``slurm:`` block is not part of a
stage's recipe (its hash ignores it).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from tools.recipe import registry
from tools.recipe.registry import RecipeError

FIELDS = ("gpus_per_node", "grpo_engine", "eval_backend")  # --field: what scripts read of a profile
_MEM_UNITS = {"K": 2**-10, "M": 1, "G": 2**10, "T": 2**20, "": 1}  # in MB, as sbatch reads --mem


@dataclass(frozen=True)
class Resources:
    """What one node of a job of this profile needs."""

    profile: str
    gpus_per_node: int
    cpus_per_task: int
    mem: str

    def sbatch_options(self) -> list[str]:
        return [
            f"--gres=gpu:{self.gpus_per_node}",
            f"--cpus-per-task={self.cpus_per_task}",
            f"--mem={self.mem}",
        ]

    def mem_mb(self) -> int:
        return int(int(self.mem.rstrip("KMGT")) * _MEM_UNITS[self.mem[-1] if self.mem[-1] in "KMGT" else ""])


def resources(profile: str) -> Resources:
    """The resources declared by ``recipes/profiles/<profile>.yaml`` (checked by ``registry.profile``)."""
    info = registry.profile(profile)
    return Resources(profile, info.gpus_per_node, info.cpus_per_task, info.mem)


def check_job(res: Resources, env: dict[str, str]) -> list[str]:
    """Problems of this SLURM job's allocation (from ``env``) for the profile; notes go to stderr.

    A job without GPUs for a GPU profile is refused (plain ``sbatch`` without ``--gres``); any GPU count the
    user asked for is kept (the runner refits SFT's accumulation, EasyR1 follows the job's GPUs)."""
    gpus = int(env.get("SLURM_GPUS_ON_NODE") or 0)
    options = " ".join(res.sbatch_options())
    if res.gpus_per_node and not gpus:
        return [
            f"this job has no GPUs; profile {res.profile} needs {res.gpus_per_node} per node: submit with "
            f"slurm/submit.sh SCRIPT (or sbatch {options} SCRIPT)"
        ]
    got = {
        "GPUs per node": (gpus, res.gpus_per_node),
        "CPUs per task": (int(env.get("SLURM_CPUS_PER_TASK") or 0), res.cpus_per_task),
        "memory per node (MB)": (int(env.get("SLURM_MEM_PER_NODE") or 0), res.mem_mb()),
    }
    for what, (have, want) in got.items():
        if have and have != want:
            print(
                f"note: the job's {what} {have} differ from profile {res.profile}'s {want} (kept)",
                file=sys.stderr,
            )
    return []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile-args",
        help="print the sbatch options (GPUs, CPUs, memory) a hardware profile asks for",
        description="Print the sbatch options of recipes/profiles/PROFILE.yaml (gpus_per_node and its slurm: "
        "block): --gres=gpu:N --cpus-per-task=C --mem=M. slurm/submit.sh and slurm/pipeline.sh put them "
        "before your own sbatch options, which win.",
    )
    add_arguments(parser)
    parser.set_defaults(func=_main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default=os.environ.get("PROFILE") or "h20x4",
        help="profile (default: $PROFILE, else h20x4)",
    )
    parser.add_argument(
        "--format",
        choices=("sbatch", "lines", "describe"),
        default="sbatch",
        help="sbatch: the options on one line; lines: one option per line (for bash mapfile); describe: a "
        "sentence for --help",
    )
    parser.add_argument(
        "--field",
        choices=FIELDS,
        help="print this one declaration of the profile instead (e.g. eval_backend for slurm/eval.sbatch)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="inside a job: fail when it has no GPUs but the profile needs some",
    )


def _main(args: argparse.Namespace) -> int:
    try:
        res = resources(args.profile)
        if args.field:
            print(getattr(registry.profile(args.profile), args.field))
            return 0
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = check_job(res, dict(os.environ))
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if args.format == "describe":
        options = " ".join(res.sbatch_options())
        print(
            f"profile {res.profile}: {res.gpus_per_node} GPUs per node, {res.cpus_per_task} CPUs, "
            f"{res.mem} memory ({options})"
        )
    else:
        print(("\n" if args.format == "lines" else " ").join(res.sbatch_options()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.train.profile_args", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return _main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
