"""Cross-modal process reward: the judge (``rewards.judge``) grades the reasoning of each rollout.

``process_rewards`` is the batch API the EasyR1 and TRL adapters call; a rollout's process reward is the
mean of the judge's integrity and knowledge scores (``JudgeResult.process``). Judge faults never raise here;
only the judge's health guard does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from rewards.judge import JudgeItem, JudgeResult, get_judge

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
    settings: dict[str, Any] | None,
    guard: tuple[float, int],
) -> list[JudgeResult]:
    """Judge results in order: format-failing responses are not sent (scores 0, not failed); an answer
    without question/image (not the packed JSON) gets the transport fallback and counts as failed. The call
    is one training step for the judge's health guard, ``guard`` = (max_failure_rate, steps)
    (``rewards.judge.guard``), which raises ``JudgeOutage`` when the judge keeps failing."""
    judge = get_judge(settings)
    results: dict[int, JudgeResult] = {}
    items: dict[int, JudgeItem] = {}
    rows = zip(responses, answers, formats, accuracies, strict=True)
    for index, (response, answer, format_ok, correct) in enumerate(rows):
        item = judge_item(response, unpack_answer(answer), bool(correct)) if format_ok else None
        if not format_ok:
            results[index] = JudgeResult(0.0, 0.0)
        elif item is None:
            logger.warning("judge: answer %d lacks question/image/ground_truth JSON: %.80r", index, answer)
            results[index] = judge.config.fallback(bool(correct), "transport")
        else:
            items[index] = item
    if items:
        results.update(zip(items, judge.judge(list(items.values())), strict=True))
    sent = [results[index] for index, format_ok in enumerate(formats) if format_ok]
    reasons = dict(judge.last.failures) if items else {}
    judge.guard(*guard).record(sum(r.failed for r in sent), len(sent), reasons, judge.last_error)
    return [results[index] for index in range(len(responses))]
