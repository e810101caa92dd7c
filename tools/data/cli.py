"""``pathvlm data {pathmmu,omnimedvqa,check}``: convert and verify datasets (``synth``: tools/dev/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.common.errors import UserError
from tools.common.grpo_rows import count_overlong, overlong_line
from tools.common.paths import data_root
from tools.data import benchmarks, omnimedvqa, pathmmu
from tools.data.check import check_output
from tools.recipe.compose import stage_file
from tools.recipe.registry import load_with_defaults

OUTPUT_LAYOUT = """\
output (--out, default $PATHVLM_DATA/pathmmu, PATHVLM_DATA defaulting to data/generated):
  manifest.json                     seed, split_unit, source_sha256, counts, stats, files {path: sha256},
                                    splits {sft,rl,[validation,]test: [{id, image, ...}]}; --split
                                    authors-v2 adds split, split_keys {path, sha256}, audit, key_stats
  llamafactory/dataset_info.json    sharegpt entries pathmmu_<split> for every split
  llamafactory/<split>.json         messages + images (absolute paths), one file per split
  easyr1/{rl,[validation,]test}.jsonl
                                    problem, images, answer (JSON: ground_truth, question, options, image, id)
  eval/{[validation,]test}.jsonl    id, subset, image, question, options, answer
  rejects.jsonl                     only with --skip-invalid and rejected items
The folder is written beside --out and swapped in at the end: a failed or interrupted conversion leaves the
previous output as it was (rejects of a failed split go to <out>.rejects.jsonl).
"""


SKIP_INVALID = "write bad items to rejects.jsonl instead of failing"
# Parsed arguments that are not options of the conversion function.
CONVERTER_KEYS = {"command", "data_command", "func", "convert", "root", "out"}


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 3000,1000, got {text!r}"
        ) from exc


def _converter(
    commands: argparse._SubParsersAction,
    name: str,
    what: str,
    description: str | None,
    root: str,
) -> argparse.ArgumentParser:
    """``pathvlm data <name>`` with what every conversion takes: --root, --out (then its own flags and
    --skip-invalid)."""
    p = commands.add_parser(
        name, help=what, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--root", type=Path, required=True, help=root)
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default: $PATHVLM_DATA/{name})")
    p.set_defaults(func=_convert)
    return p


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add ``pathvlm data``; returns its subcommands, to which the CLI adds ``synth`` (``tools.dev``)."""
    parser = subparsers.add_parser(
        "data",
        help="convert PathMMU / OmniMedVQA, generate synthetic data, check outputs",
        description=__doc__,
    )
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    p = _converter(
        commands,
        "pathmmu",
        "PathMMU -> deduplicated, image-disjoint sft/rl/test splits for LLaMA-Factory, EasyR1 and eval",
        pathmmu.__doc__,
        "folder holding PathMMU's data.json and images/",
    )
    p.epilog = OUTPUT_LAYOUT
    p.add_argument("--seed", type=int, default=42, help="split seed (default: 42)")
    p.add_argument(
        "--sizes",
        type=_sizes,
        default=pathmmu.SIZES,
        help="exact sft,rl sizes; test is the rest (default: 3000,1000)",
    )
    p.add_argument("--subsets", type=_csv, default=list(pathmmu.SUBSETS), help="default: PubMed,EduContent")
    p.add_argument(
        "--target-style",
        choices=("think_answer", "answer"),
        default="think_answer",
        help="SFT target: <think>{explanation}</think><answer>C) text</answer> (default, the authors' "
        "choice) or <answer>C) text</answer>",
    )
    p.add_argument(
        "--val",
        type=int,
        default=0,
        metavar="N",
        help="also a validation split of N items between rl and test (default 0: the paper's sft/rl/test; "
        "385 gives the authors' revision layout 3000/1000/385/1000)",
    )
    p.add_argument(
        "--split-unit",
        choices=("image", "question"),
        default="image",
        help="image (default): items sharing an image, image content or question stay in one split; "
        "question: the paper's question-level split, items sharing an image may land in different splits",
    )
    p.add_argument(
        "--split",
        choices=pathmmu.SPLIT_KINDS,
        default="seeded",
        help="seeded (default): our split from --seed/--sizes/--val/--split-unit; authors-v2: the authors' "
        "audited 2026 split (sft 3000 / rl 1000 / validation 385 / test 999, github:Freddie1946/myr1 "
        "data/pathmmu_image_disjoint_v2), found item by item from --split-keys",
    )
    p.add_argument(
        "--split-keys",
        type=Path,
        default=None,
        help="with --split authors-v2: the membership key file (default: data/splits/authors-v2.json)",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help=SKIP_INVALID + " (authors-v2: leave out keys not found or found twice, reported)",
    )
    p.set_defaults(convert=pathmmu.convert_pathmmu)

    p = _converter(
        commands,
        "omnimedvqa",
        "OmniMedVQA subsets -> out-of-domain eval JSONL (eval/<slug>.jsonl)",
        omnimedvqa.__doc__,
        "OmniMedVQA folder holding QA_information/ and Images/",
    )
    p.add_argument(
        "--subsets",
        type=_csv,
        default=list(omnimedvqa.SUBSETS),
        help=f"default: {','.join(omnimedvqa.SUBSETS)}",
    )
    p.add_argument("--skip-invalid", action="store_true", help=SKIP_INVALID)
    p.set_defaults(convert=omnimedvqa.convert_omnimedvqa)

    for name, what, convert in (
        (
            "pathvqa",
            "PathVQA test (HF parquet) -> closed-ended yes/no as A/B (eval/pathvqa_closed.jsonl)",
            benchmarks.convert_pathvqa,
        ),
        (
            "mmmu",
            "MMMU dev (HF parquet) -> non-medical multiple choice (eval/mmmu_nonmedical_dev.jsonl)",
            benchmarks.convert_mmmu,
        ),
    ):
        p = _converter(
            commands, name, what, benchmarks.__doc__, "folder holding the Hugging Face parquet files"
        )
        p.add_argument("--skip-invalid", action="store_true", help=SKIP_INVALID)
        p.set_defaults(convert=convert)

    p = commands.add_parser(
        "check",
        help="re-verify a converted output folder (counts, disjointness, files present)",
        description="Exit 0 when DIR is a consistent `pathvlm data pathmmu|omnimedvqa` output, else print "
        "every problem and exit 1.",
    )
    p.add_argument(
        "dir", type=Path, help="output folder of `pathvlm data pathmmu` or `pathvlm data omnimedvqa`"
    )
    p.add_argument(
        "--model",
        help="with a PathMMU output: count, with this model's processor, the RL prompts (image tokens "
        "included) that EasyR1's data.filter_overlong_prompts would drop",
    )
    grpo = load_with_defaults(stage_file("_grpo")).easyr1.data  # the GRPO recipes' prompt and pixel settings
    for flag in ("max_prompt_length", "max_pixels", "min_pixels"):
        p.add_argument(
            f"--{flag.replace('_', '-')}",
            type=int,
            default=grpo[flag],
            help=f"default: {grpo[flag]}, easyr1.data.{flag} of the GRPO recipes",
        )
    p.set_defaults(func=_check)
    return commands


def _convert(args: argparse.Namespace) -> int:
    """``args.convert(root, out, **options)``: every option its parser added, out defaulting to
    ``$PATHVLM_DATA/<name>`` (a DataError becomes one line and exit 2 in ``tools.cli``)."""
    options = {key: value for key, value in vars(args).items() if key not in CONVERTER_KEYS}
    args.convert(args.root, args.out or data_root() / args.data_command, **options)
    return 0


def _check(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise UserError(f"{args.dir}: no such folder (a `pathvlm data` output folder)")
    problems = check_output(args.dir)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print(f"{args.dir}: {len(problems)} problem(s)")  # the verdict on stdout, the problems on stderr
        return 1
    print(f"{args.dir}: OK")
    if args.model:
        rl = args.dir / "easyr1" / "rl.jsonl"
        if not rl.is_file():
            raise UserError(f"--model counts RL prompts: {rl} not found (a PathMMU output has it)")
        data = {"train_files": str(rl), "max_prompt_length": args.max_prompt_length}
        data |= {"max_pixels": args.max_pixels, "min_pixels": args.min_pixels}
        dropped, total, longest = count_overlong(data, args.model)
        print(f"{overlong_line(dropped, total, args.max_prompt_length)} (longest: {longest})")
    return 0
