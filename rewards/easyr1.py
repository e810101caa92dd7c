"""EasyR1 batch reward functions: EasyR1's ``AutoRewardManager`` reads ``REWARD_TYPE = "batch"`` from this
file (EasyR1 b44b311 has no ``reward_type`` config key).

``worker.reward.reward_function: ./rewards/easyr1.py:outcome_reward`` (beta, epsilon) or
``./rewards/easyr1.py:process_reward`` (r1); ``reward_function_kwargs`` carries the weights (and the judge
settings, see rewards/README.md). EasyR1 calls ``fn(reward_inputs, **kwargs)`` with one dict per response
(``response``, ``response_length``, ``ground_truth`` = our JSON answer column) and logs every key of the
returned dicts as ``reward/<key>``:

    overall = format_weight * format + accuracy_weight * accuracy [+ process_weight * process]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# EasyR1 loads this file by path (as module "custom_reward_fn"): make the repository importable.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from rewards.judge.guard import JudgeGuard  # noqa: E402
from rewards.process import process_rewards  # noqa: E402
from rewards.rules import accuracy_reward, format_reward  # noqa: E402
from rewards.watch import ZeroRewardWatch  # noqa: E402

REWARD_NAME = "pathvlm_r1"
REWARD_TYPE = "batch"
# EasyR1's reward manager calls the reward function once per step, in one process for the whole run.
_ZERO_REWARD = ZeroRewardWatch()


def outcome_reward(
    reward_inputs: list[dict[str, Any]], format_weight: float = 1.0, accuracy_weight: float = 1.0
) -> list[dict[str, float]]:
    """Per response ``{overall, format, accuracy}`` (stages beta and epsilon)."""
    scores = []
    for item in reward_inputs:
        fmt = format_reward(item["response"])
        acc = accuracy_reward(item["response"], item["ground_truth"])
        scores.append(
            {"overall": format_weight * fmt + accuracy_weight * acc, "format": fmt, "accuracy": acc}
        )
    if scores:
        _ZERO_REWARD.observe(sum(score["overall"] for score in scores) / len(scores))
    return scores


def process_reward(
    reward_inputs: list[dict[str, Any]],
    format_weight: float = 1.0,
    accuracy_weight: float = 1.0,
    process_weight: float = 1.0,
    judge: dict[str, Any] | None = None,
    judge_max_failure_rate: float = JudgeGuard.max_failure_rate,
    judge_guard_steps: int = JudgeGuard.steps,
) -> list[dict[str, float]]:
    """Per response ``{overall, format, accuracy, process, integrity, knowledge, judge_failed,
    judge_parse_failed, judge_transport_failed}`` (stage r1).

    ``process`` is the mean of the judge's integrity and knowledge scores; 0 for responses that fail the
    format check (not sent); the fallback of its kind for failed judgements (``judge_failed`` = 1, and
    ``judge_parse_failed`` or ``judge_transport_failed`` = 1). A single judge fault never raises; a
    judge that keeps failing does: more than ``judge_max_failure_rate`` of a call's judged responses fell
    back on ``judge_guard_steps`` consecutive calls (steps) raises ``JudgeOutage``, which stops the run
    (``rewards.judge.guard``). A malformed ``judge`` config raises ValueError naming the key.
    """
    scores = outcome_reward(reward_inputs, format_weight, accuracy_weight)
    results = process_rewards(
        [item["response"] for item in reward_inputs],
        [item["ground_truth"] for item in reward_inputs],
        [score["format"] for score in scores],
        [score["accuracy"] for score in scores],
        judge,
        (judge_max_failure_rate, judge_guard_steps),
    )
    for score, result in zip(scores, results, strict=True):
        score["overall"] += process_weight * result.process
        score.update(
            process=result.process,
            integrity=result.integrity,
            knowledge=result.knowledge,
            judge_failed=float(result.failed),
            judge_parse_failed=float(result.failure == "parse"),
            judge_transport_failed=float(result.failure == "transport"),
        )
    return scores
