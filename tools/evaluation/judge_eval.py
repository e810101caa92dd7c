"""``pathvlm judge-eval``: the judge's rubric on every test output of a model (reasoning quality).

``pathvlm judge-eval [EVAL_DIR ...] [--size S --profile P --set KEY=VALUE]`` grades each record of a finished
evaluation folder (``<runs>/<size>/<stage>/eval/test/``; default: every such folder of ``--size``) with the
judge of the r1 recipe composed for ``--size`` / ``--profile`` (its model, endpoint, prompt, cache,
retries and fallbacks: the reward's own judge, ``rewards.judge``). Outputs that fail the format check score
0 on every dimension without a call, as in training; a reply without a usable verdict gets the recipe's
parse fallback, as in training, and is counted. The folder gets, written all-or-nothing:

- ``judged.jsonl``: per item ``id, integrity, knowledge, process`` (their mean), ``sent`` (false for format
  failures) and ``failure`` (``parse`` or null);
- ``judged_summary.json``: the judge (base URL, model, prompt version and sha256, temperature), the
  ``ids_sha256`` of the items it graded (checked against ``summary.json`` by the report), mean and 95 %
  bootstrap CI per dimension, failure counts, and the run's calls, tokens and cost.

An item the judge could not be reached for (HTTP errors, timeouts after the retries) leaves the folder as
it was and exits 1: rerun, and the cached judgements are not paid again. A folder already judged by the same
judge on the same items is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rewards.judge import Judge, JudgeConfig, JudgeItem
from tools.common.paths import runs_root
from tools.evaluation.eval_files import (
    SUMMARY_FILE,
    EvalFileError,
    check_folder,
    file_sha256,
    item_image,
    load_items,
    read_json,
    write_atomic,
    write_json,
)
from tools.evaluation.stats import bootstrap_ci
from tools.recipe.cli import add_recipe_options, with_profile_size
from tools.recipe.compose import judge_settings
from tools.recipe.run import IN_DOMAIN, Run

JUDGED_FILE, JUDGED_SUMMARY_FILE = "judged.jsonl", "judged_summary.json"
DIMENSIONS = ("integrity", "knowledge", "process")
CHUNK = 256  # items per judge batch (each batch has the recipe's deadline)


def judge_identity(judge) -> dict[str, Any]:
    config = judge.config
    return {
        "base_url": config.base_url,
        "model": config.model,
        "prompt_version": judge.prompt.version,
        "prompt_sha256": judge.prompt.sha256,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
    }


def judge_folder(eval_dir: Path, judge) -> dict[str, Any] | None:
    """Grade ``eval_dir``; returns its judged summary, or None when a judgement could not be made."""
    try:
        summary, records = check_folder(eval_dir)
    except EvalFileError as error:
        raise SystemExit(f"{error}; judge-eval needs a finished evaluation") from error
    identity = judge_identity(judge)
    usage_fields = ("calls", "retries", "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd")
    before = {name: getattr(judge.total, name) for name in usage_fields}
    judged_summary_path = eval_dir / JUDGED_SUMMARY_FILE
    if judged_summary_path.exists():
        previous = read_json(judged_summary_path)
        if previous.get("judge") == identity and previous.get("ids_sha256") == summary["ids_sha256"]:
            print(f"{eval_dir}: already judged by {identity['model']}, skipped")
            return previous
    data = Path(summary["data"])
    if not data.is_file() or file_sha256(data) != summary["data_sha256"]:
        raise SystemExit(f"{eval_dir}: its data file {data} is missing or changed since the evaluation")
    items = {item["id"]: item for item in load_items(data)}
    scores = {id_: {"integrity": 0.0, "knowledge": 0.0, "sent": False, "failure": None} for id_ in records}
    to_send = [
        (
            id_,
            JudgeItem(
                response=record["output"],
                question=items[id_]["question"],
                ground_truth=items[id_]["answer"],
                image=item_image(items[id_], data),
                correct=record["correct"],
                options=tuple(items[id_]["options"]),
            ),
        )
        for id_, record in records.items()
        if record["format_ok"]  # format failures score 0 without a call, as in training
    ]
    for start in range(0, len(to_send), CHUNK):
        chunk = to_send[start : start + CHUNK]
        for (id_, _), result in zip(chunk, judge.judge([item for _, item in chunk]), strict=True):
            scores[id_] = {"integrity": result.integrity, "knowledge": result.knowledge}
            scores[id_] |= {"sent": True, "failure": result.failure}
    unreached = [id_ for id_, score in scores.items() if score["failure"] == "transport"]
    if unreached:
        print(
            f"{eval_dir}: the judge was not reached for {len(unreached)} item(s) (e.g. {unreached[0]!r}); "
            "nothing written: rerun (judgements made are cached)",
            file=sys.stderr,
        )
        return None
    rows = [
        {"id": id_, "integrity": s["integrity"], "knowledge": s["knowledge"]}
        | {"process": (s["integrity"] + s["knowledge"]) / 2, "sent": s["sent"], "failure": s["failure"]}
        for id_, s in scores.items()
    ]
    judged = {
        "judge": identity,
        "dataset": eval_dir.name,
        "n": len(rows),
        "ids_sha256": summary["ids_sha256"],  # check_folder: the hash of these records' ids
        "sent": sum(row["sent"] for row in rows),
        "parse_failures": sum(row["failure"] == "parse" for row in rows),
    }
    for dim in DIMENSIONS:
        values = [row[dim] for row in rows]
        judged |= {dim: sum(values) / len(values), f"{dim}_ci": list(bootstrap_ci(values))}
    judged["usage"] = {name: getattr(judge.total, name) - before[name] for name in usage_fields}
    write_atomic(eval_dir / JUDGED_FILE, "".join(json.dumps(row) + "\n" for row in rows))
    write_json(judged_summary_path, judged)
    return judged


def run(args: argparse.Namespace) -> int:
    runs = [Run.at(path) for path in sorted((args.runs / args.size).glob("*"))]
    folders = args.eval_dirs or [
        run.eval_dir(IN_DOMAIN) for run in runs if (run.eval_dir(IN_DOMAIN) / SUMMARY_FILE).is_file()
    ]
    if not folders:
        raise SystemExit(f"{args.runs / args.size}: no finished */eval/test/ evaluations to judge")
    settings = judge_settings(args.size, args.profile, args.overrides)  # the r1 reward's own judge
    if settings is None:
        raise SystemExit("no stage recipe's reward calls a judge (reward_function_kwargs.judge)")
    judge = Judge(JudgeConfig.from_dict(settings))
    failed = 0
    for folder in folders:
        judged = judge_folder(folder, judge)
        if judged is None:
            failed += 1
            continue
        print(
            f"{folder}: n={judged['n']} process={judged['process']:.3f} "
            f"integrity={judged['integrity']:.3f} knowledge={judged['knowledge']:.3f} "
            f"({judged['sent']} sent, {judged['parse_failures']} parse fallbacks)"
        )
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "judge-eval",
        help="judge the reasoning of every test output (judged.jsonl beside items.jsonl)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "eval_dirs", nargs="*", type=Path, help="evaluation folders (default: <runs>/<size>/*/eval/test)"
    )
    add_recipe_options(parser, budget=False)  # the r1 recipe whose judge settings are used
    parser.add_argument(
        "--runs", type=Path, default=runs_root(), help="runs root (default: $PATHVLM_RUNS or runs)"
    )
    parser.set_defaults(func=with_profile_size(run))
