"""``pathvlm data synth``: a small learnable dataset in the real PathMMU or OmniMedVQA schema.

The data come from ``tools.dev.synth``. The CLI (``tools/cli.py``) registers it under ``pathvlm data``,
so the conversion code imports nothing of the development harness.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.dev.synth import write_synthetic_omnimedvqa, write_synthetic_pathmmu


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "synth",
        help="write a small learnable dataset in the real PathMMU or OmniMedVQA schema",
        description="A dataset whose answer is decidable from the image (its dominant colour), in the real "
        "source schema, for tests and tiny-model runs.",
    )
    p.add_argument("--out", type=Path, required=True, help="folder to write the source-schema dataset to")
    p.add_argument(
        "--items", type=int, required=True, help="unique items (pathmmu) or items per subset (omnimedvqa)"
    )
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument(
        "--format", choices=("pathmmu", "omnimedvqa"), default="pathmmu", help="schema (default: pathmmu)"
    )
    p.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    if args.items < 1:
        print(f"error: --items must be at least 1, got {args.items}", file=sys.stderr)
        return 1
    write = write_synthetic_pathmmu if args.format == "pathmmu" else write_synthetic_omnimedvqa
    print(
        f"synthetic {args.format} dataset written to {write(args.out, args.items, seed=args.seed)}",
        file=sys.stderr,
    )
    return 0
