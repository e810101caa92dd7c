"""Scoring: one output against its answer (with the training reward's parser), and a folder's summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from rewards import accuracy_reward, extract_answer, format_reward, parse_choice
from rewards.rules import ground_truth_choice
from tools.evaluation.eval_files import ids_sha256
from tools.evaluation.scorings import SCORINGS
from tools.evaluation.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_ci


def score(output: str, answer: str) -> dict[str, Any]:
    """Strict/letter correctness, parsed choice and format check of one output, with the reward code."""
    truth = ground_truth_choice(answer)
    if truth is None:
        raise ValueError(f"ground truth {answer!r} is not an option string like 'C) text'")
    content = extract_answer(output)
    correct = accuracy_reward(output, answer) == 1.0
    # The gold option itself may read like a list ("D) Both A) and B)"), which parse_choice declines.
    parsed = truth if correct else parse_choice(content) if content is not None else None
    return {
        "parsed_letter": parsed[0] if parsed else None,
        "parsed_text": parsed[1] if parsed else None,
        "correct": correct,
        "letter_correct": parsed is not None and parsed[0] == truth[0],
        "format_ok": format_reward(output) == 1.0,
    }


def cap_rate(records: Sequence[dict[str, Any]], max_new_tokens: int | None) -> float | None:
    """Share of responses with ``max_new_tokens`` output tokens (cut by the limit); None without a limit."""
    if not max_new_tokens:
        return None
    return sum(r["output_tokens"] >= max_new_tokens for r in records) / len(records)


def scorings(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The authors' two accuracies (tools/evaluation/scorings.py); None where a record predates them."""
    return {
        name: (
            sum(r[f"{name}_correct"] for r in records) / len(records)
            if all(f"{name}_correct" in r for r in records)
            else None
        )
        for name in SCORINGS
    }


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def summarize(records: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The summary JSON: accuracies with bootstrap CIs, token and failure rates, per-subset accuracy."""
    correct = [float(r["correct"]) for r in records]
    letter = [float(r["letter_correct"]) for r in records]
    tokens = [float(r["output_tokens"]) for r in records]
    by_subset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_subset[record["subset"]].append(record)
    return {
        **meta,
        "n": len(records),
        "ids_sha256": ids_sha256(r["id"] for r in records),
        "accuracy": _mean(correct),
        "accuracy_ci": list(bootstrap_ci(correct)),
        "letter_accuracy": _mean(letter),
        "letter_accuracy_ci": list(bootstrap_ci(letter)),
        "avg_output_tokens": _mean(tokens),
        "avg_output_tokens_ci": list(bootstrap_ci(tokens)),
        "format_failure_rate": _mean(0.0 if r["format_ok"] else 1.0 for r in records),
        "parse_failure_rate": _mean(1.0 if r["parsed_letter"] is None else 0.0 for r in records),
        # as the authors report them (protocol/final_unified_results_tables_20260814.json): answers the
        # parser can read, and responses that ran to the token limit (no end-of-sequence before it)
        "parse_rate": _mean(0.0 if r["parsed_letter"] is None else 1.0 for r in records),
        "cap_rate": cap_rate(records, meta.get("max_new_tokens")),
        "scorings": scorings(records),
        "per_subset": {
            subset: {
                "n": len(rows),
                "accuracy": _mean(float(r["correct"]) for r in rows),
                "letter_accuracy": _mean(float(r["letter_correct"]) for r in rows),
                "scorings": scorings(rows),
            }
            for subset, rows in sorted(by_subset.items())
        },
        "bootstrap": {"confidence": 0.95, "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
    }
