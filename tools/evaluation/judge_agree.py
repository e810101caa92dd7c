"""Agreement of two judges on the same responses: is a local judge a stand-in for GPT-4o?

Both judges grade the same responses with the same prompt (the judge client of r1: cache, retries,
fallbacks). Responses come from an eval ``items.jsonl`` (``output`` per ``id``; ``--data`` is the eval JSONL
with the question, options, image and answer of each id) or from an r1 rollout dump (JSONL with
``response`` and ``ground_truth``, EasyR1's packed JSON answer). Outputs that fail the format check are
skipped (r1 never sends them); a response either judge failed on is left out and counted. Reported per
dimension (integrity, knowledge, process): Spearman and Pearson correlation and the mean absolute
difference, and the agreement on "process >= 0.5", each with a seeded 95 % bootstrap CI.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewards import accuracy_reward, format_reward
from rewards.judge import get_judge
from rewards.process import judge_item, unpack_answer
from tools.evaluation.eval_files import item_image, jsonl_objects, load_items
from tools.evaluation.judge_eval import DIMENSIONS

if TYPE_CHECKING:
    import numpy as np

JUDGE_SPEC = re.compile(r"^(https?://[^/\s]+(?:/[^:\s]*)?):(\S+)$")


@dataclass(frozen=True)
class JudgeSpec:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"

    @classmethod
    def parse(cls, text: str, api_key_env: str = "OPENAI_API_KEY") -> JudgeSpec:
        match = JUDGE_SPEC.match(text.strip())
        if match is None:
            raise ValueError(
                f"judge {text!r}: expected BASE_URL:MODEL, e.g. http://host:8000/v1:Qwen/Qwen2.5-VL-72B"
            )
        return cls(match.group(1), match.group(2), api_key_env)


def load_responses(responses: Path, data: Path | None) -> list[Any]:
    """JudgeItems for the format-passing responses of an eval ``items.jsonl`` (with ``data``) or a dump."""
    rows = [row for _, row in jsonl_objects(responses)]
    if not rows:
        raise ValueError(f"{responses}: no rows")
    items = []
    if "output" in rows[0] and "id" in rows[0]:
        if data is None:
            raise ValueError(
                f"{responses}: an eval items.jsonl needs --data (the eval JSONL it was made from)"
            )
        by_id = {item["id"]: item for item in load_items(data)}
        for line_no, row in enumerate(rows, 1):
            item = by_id.get(str(row.get("id")))
            if item is None:
                raise ValueError(f"{responses}:{line_no}: id {row.get('id')!r} is not in {data}")
            fields = {**item, "image": item_image(item, data), "ground_truth": item["answer"]}
            if format_reward(row["output"]):
                correct = bool(accuracy_reward(row["output"], item["answer"]))
                items.append(judge_item(row["output"], fields, correct))
    else:
        for line_no, row in enumerate(rows, 1):
            response, answer = row.get("response"), row.get("ground_truth", row.get("answer"))
            fields = unpack_answer(answer) if isinstance(answer, str) else {}
            if not isinstance(response, str) or judge_item(response, fields, False) is None:
                raise ValueError(
                    f"{responses}:{line_no}: expected an eval items.jsonl row (id, output) or a rollout row "
                    "(response, ground_truth = the packed JSON answer with question, image, ground_truth)"
                )
            if format_reward(response):
                items.append(judge_item(response, fields, bool(accuracy_reward(response, answer))))
    return items


def _stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    import numpy as np
    from scipy import stats

    with np.errstate(all="ignore"):
        constant = np.ptp(a) == 0 or np.ptp(b) == 0
        return {
            "spearman": math.nan if constant else float(stats.spearmanr(a, b).statistic),
            "pearson": math.nan if constant else float(stats.pearsonr(a, b).statistic),
            "mad": float(np.mean(np.abs(a - b))),
        }


def agreement(a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Statistics of two judges' (n, 3) score arrays (integrity, knowledge, process) with bootstrap CIs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(a)

    def all_stats(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        values = {}
        for column, name in enumerate(DIMENSIONS):
            values.update({f"{name}_{key}": v for key, v in _stats(x[:, column], y[:, column]).items()})
        values["process_ge_0.5_agreement"] = float(np.mean((x[:, 2] >= 0.5) == (y[:, 2] >= 0.5)))
        return values

    point = all_stats(a, b)
    draws = [all_stats(a[idx], b[idx]) for idx in (rng.integers(0, n, n) for _ in range(resamples))]
    result: dict[str, Any] = {}
    for key, value in point.items():
        samples = np.array([draw[key] for draw in draws], dtype=float)
        samples = samples[np.isfinite(samples)]
        low, high = np.percentile(samples, [2.5, 97.5]) if len(samples) else (math.nan, math.nan)
        result[key] = {"value": value, "ci95": [float(low), float(high)]}
    return result


def run_agreement(
    a: JudgeSpec,
    b: JudgeSpec,
    items: list[Any],
    n: int,
    settings: dict[str, Any],
    seed: int = 0,
) -> dict[str, Any]:
    """Judge ``n`` of ``items`` (a seeded sample) with both judges; the report as a dict."""
    import numpy as np

    chosen = items if len(items) <= n else random.Random(seed).sample(items, n)
    results = {}
    for name, spec in (("a", a), ("b", b)):
        judge = get_judge(
            {**settings, "base_url": spec.base_url, "model": spec.model, "api_key_env": spec.api_key_env}
        )
        results[name] = judge.judge(chosen)
    both = [
        (ra, rb) for ra, rb in zip(results["a"], results["b"], strict=True) if not ra.failed and not rb.failed
    ]
    report: dict[str, Any] = {
        "a": f"{a.base_url}:{a.model}",
        "b": f"{b.base_url}:{b.model}",
        "responses": len(items),
        "judged": len(chosen),
        "failed_a": sum(r.failed for r in results["a"]),
        "failed_b": sum(r.failed for r in results["b"]),
        "compared": len(both),
    }
    if len(both) < 3:
        raise ValueError(
            f"judge agree: only {len(both)} responses judged by both; need at least 3 ({report})"
        )
    scores = [
        np.array([[r.integrity, r.knowledge, r.process] for r in side]) for side in zip(*both, strict=True)
    ]
    report["statistics"] = agreement(scores[0], scores[1], seed=seed)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"judge a: {report['a']}",
        f"judge b: {report['b']}",
        f"responses: {report['responses']} (format ok), judged: {report['judged']}, failed: "
        f"{report['failed_a']} (a) / {report['failed_b']} (b), compared: {report['compared']}",
        f"{'statistic':<32} {'value':>8}  95 % CI",
    ]
    for key, entry in report["statistics"].items():
        low, high = entry["ci95"]
        lines.append(f"{key:<32} {entry['value']:>8.3f}  [{low:.3f}, {high:.3f}]")
    return "\n".join(lines)
