"""Cross-modal process reward: the judge (``rewards.judge``) grades the reasoning of each rollout.

The judge sees the image, the question, the standard answer, whether the model's answer was correct and the
model's complete output (delimited as untrusted text), and replies ``{"integrity_score": x,
"knowledge_score": y}``; the process reward is their mean. ``process_rewards`` is the batch API the EasyR1
and TRL adapters call; it never raises on judge faults.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from rewards.judge import JudgeConfig, JudgeItem, JudgeResult, get_judge

logger = logging.getLogger(__name__)


def unpack_answer(answer: str) -> dict[str, Any]:
    """The JSON in EasyR1's answer column (ground_truth, question, options, image, id); {} if not JSON."""
    try:
        fields = json.loads(answer)
    except (TypeError, ValueError):
        return {}
    return fields if isinstance(fields, dict) else {}


def judge_item(response: str, fields: dict[str, Any], correct: bool) -> JudgeItem | None:
    """The judge's item for a response and its unpacked answer; None without question/image/ground truth."""
    if not all(isinstance(fields.get(key), str) for key in ("question", "image", "ground_truth")):
        return None
    options = fields.get("options") or ()
    return JudgeItem(
        response=response,
        question=fields["question"],
        ground_truth=fields["ground_truth"],
        image=fields["image"],
        correct=correct,
        options=tuple(str(option) for option in options) if isinstance(options, list) else (),
    )


def process_rewards(
    responses: Sequence[str],
    answers: Sequence[str],
    formats: Sequence[float],
    accuracies: Sequence[float],
    settings: dict[str, Any] | JudgeConfig | None,
    guard: tuple[float, int] | None = None,
) -> list[JudgeResult]:
    """Judge results in order: format-failing responses are not sent (scores 0, not failed); an answer
    without question/image (not the packed JSON) gets the transport fallback and counts as failed. With
    ``guard`` = (max_failure_rate, steps) the call is one training step for the judge's health guard
    (``rewards.judge.guard``), which raises ``JudgeOutage`` when the judge keeps failing."""
    judge = get_judge(settings)
    results: list[JudgeResult | None] = [None] * len(responses)
    items: list[JudgeItem] = []
    positions: list[int] = []
    for index, (response, answer, format_ok, correct) in enumerate(
        zip(responses, answers, formats, accuracies, strict=True)
    ):
        if not format_ok:
            results[index] = JudgeResult(0.0, 0.0)
            continue
        item = judge_item(response, unpack_answer(answer), bool(correct))
        if item is None:
            logger.warning("judge: answer %d lacks question/image/ground_truth JSON: %.80r", index, answer)
            value = judge.config.fallback(bool(correct), "transport")
            results[index] = JudgeResult(value, value, failure="transport")
            continue
        items.append(item)
        positions.append(index)
    for index, result in zip(positions, judge.judge(items) if items else [], strict=True):
        results[index] = result
    if guard is not None:
        sent = [r for r, format_ok in zip(results, formats, strict=True) if format_ok and r is not None]
        reasons = dict(judge.last.failures) if items else {}
        judge.guard(*guard).record(sum(r.failed for r in sent), len(sent), reasons, judge.last_error)
    return results  # type: ignore[return-value]
