"""`pathvlm judge estimate` (a stage's judge cost before the run), `pathvlm judge check` (one real call to a
stage's judge, as `pathvlm run` makes before r1) and `pathvlm judge agree` (two judges, from
``tools.evaluation.judge_agree``; this module sits in train because the estimate reads training recipes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rewards.judge import JudgeConfig
from rewards.judge.check import JudgeUnusable, check_judge
from tools.evaluation import judge_agree
from tools.recipe.cli import add_recipe_arguments, with_profile_size
from tools.recipe.compose import compose, stage_judge, to_container
from tools.recipe.registry import RecipeError
from tools.train import judge_estimate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "judge", help="the process-reward judge: cost estimate, one real call, agreement of two judges"
    )
    commands = parser.add_subparsers(dest="judge_command", metavar="COMMAND", required=True)

    estimate = commands.add_parser(
        "estimate",
        help="judge calls, tokens and USD of a stage (r1) before it runs",
        description=judge_estimate.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_arguments(estimate)
    estimate.add_argument(
        "--max-usd", type=float, help="exit with code 1 when the estimate exceeds this (USD)"
    )
    estimate.add_argument(
        "--response-tokens", type=int, help="model output tokens per rollout (default: max_response_length)"
    )
    estimate.set_defaults(func=with_profile_size(_estimate))

    check = commands.add_parser(
        "check",
        help="one real call to a stage's judge (r1), as `pathvlm run` makes before training",
        description="Grade one tiny item with the stage's judge (endpoint, model, key variable, prompt; no "
        "cache). Exit 2 with one line naming the variable or URL when the key is missing or refused, the "
        "model unknown or the endpoint unreachable (rewards/judge/check.py).",
    )
    add_recipe_arguments(check)
    check.set_defaults(func=with_profile_size(_check))

    agree = commands.add_parser(
        "agree",
        help="score the same responses with two judges: correlations, differences, agreement, CIs",
        description=judge_agree.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    agree.add_argument("--a", required=True, metavar="BASE_URL:MODEL", help="first judge, e.g. the reference")
    agree.add_argument("--b", required=True, metavar="BASE_URL:MODEL", help="second judge, e.g. a local one")
    agree.add_argument("--a-key-env", default="OPENAI_API_KEY", help="variable with judge a's key")
    agree.add_argument("--b-key-env", default="OPENAI_API_KEY", help="variable with judge b's key")
    agree.add_argument("--responses", type=Path, required=True, help="eval items.jsonl or r1 rollout dump")
    agree.add_argument("--data", type=Path, help="the eval JSONL an items.jsonl was made from")
    agree.add_argument("--n", type=int, default=200, help="responses to judge, a seeded sample (default 200)")
    agree.add_argument("--seed", type=int, default=0, help="seed of the sample and the bootstrap (default 0)")
    agree.add_argument("--prompt-version", default=None, help="judge prompt (default: the judge's default)")
    agree.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight per judge (default 16)"
    )
    agree.add_argument("--cache-dir", default=".cache/judge", help="judge cache (default .cache/judge)")
    agree.add_argument("--out", type=Path, help="also write the report as JSON here")
    agree.set_defaults(func=_agree)


def _estimate(args: argparse.Namespace) -> int:
    try:
        cfg = to_container(compose(args.stage, args.size, args.profile, args.overrides, args.budget))
        result = judge_estimate.estimate(cfg, args.response_tokens)
    except (RecipeError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if result is None:
        print(f"error: stage {args.stage} has no judge (only r1 uses the process reward)", file=sys.stderr)
        return 2
    print(result.line())
    if args.max_usd is not None and result.usd > args.max_usd:
        print(f"over --max-usd: ~${result.usd:,.2f} > ${args.max_usd:,.2f}", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        cfg = to_container(compose(args.stage, args.size, args.profile, args.overrides, args.budget))
        settings = stage_judge(cfg)
        if settings is None:
            raise ValueError(f"stage {args.stage} has no judge (only r1 uses the process reward)")
        print(check_judge(JudgeConfig.from_dict(settings)))
    except (RecipeError, ValueError, JudgeUnusable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _agree(args: argparse.Namespace) -> int:
    try:
        a = judge_agree.JudgeSpec.parse(args.a, args.a_key_env)
        b = judge_agree.JudgeSpec.parse(args.b, args.b_key_env)
        items = judge_agree.load_responses(args.responses, args.data)
        settings = {"concurrency": args.concurrency, "cache_dir": args.cache_dir, "temperature": 0.0}
        if args.prompt_version:
            settings["prompt_version"] = args.prompt_version
        report = judge_agree.run_agreement(a, b, items, args.n, settings, args.seed)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(judge_agree.format_report(report))
    if args.out is not None:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        tmp.replace(args.out)
    return 0
