"""What a stage's judge will cost, before the run: calls, prompt and completion tokens, USD.

Calls: every rollout of every step, ``max_steps x rollout_batch_size x n`` (an upper bound: outputs that fail
the format check and cache hits are not sent; EasyR1's one validation pass after training adds up to one
call per test item). Prompt tokens per call: the real prompt template
(``prompts/<prompt_version>.md``) rendered with the stage's RL items (or a typical item when the data is not
there yet) and a model output of ``max_response_length`` tokens, at about 4 characters per token, plus the
image at the recipe's ``max_pixels``: OpenAI's tile count for GPT-4o-family judges (85 + 170 per 512-px
tile, after fitting 2048 px and a 768-px short side), one token per 28x28 patch for other (Qwen2.5-VL) judges.
Completion tokens: ``max_tokens`` per call (a cap: real verdicts are shorter). USD at the recipe's
``prompt_usd_per_mtok`` / ``completion_usd_per_mtok``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewards.judge import JudgeConfig, JudgeItem, JudgePrompt
from tools.recipe.compose import stage_judge

CHARS_PER_TOKEN = 4
_EXAMPLE = {
    "question": "What is the most likely diagnosis based on the histological features shown in this image?",
    "options": ["A) Adenocarcinoma", "B) Squamous cell carcinoma", "C) Lymphoma", "D) Melanoma"],
    "ground_truth": "A) Adenocarcinoma",
}
_OPENAI_VISION = ("gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4")


@dataclass(frozen=True)
class JudgeEstimate:
    stage: str
    size: str
    model: str
    steps: int
    prompts: int
    rollouts: int
    text_tokens: int
    image_tokens: int
    completion_tokens: int
    prompt_usd_per_mtok: float
    completion_usd_per_mtok: float
    items_from: str

    @property
    def calls(self) -> int:
        return self.steps * self.prompts * self.rollouts

    @property
    def prompt_tokens(self) -> int:
        return self.calls * (self.text_tokens + self.image_tokens)

    @property
    def total_completion_tokens(self) -> int:
        return self.calls * self.completion_tokens

    @property
    def usd(self) -> float:
        return (
            self.prompt_tokens * self.prompt_usd_per_mtok
            + self.total_completion_tokens * self.completion_usd_per_mtok
        ) / 1e6

    def line(self) -> str:
        return (
            f"judge estimate for {self.size}/{self.stage} ({self.model}): up to {self.calls:,} calls "
            f"({self.steps} steps x {self.prompts} prompts x {self.rollouts} rollouts), "
            f"{self.prompt_tokens:,} prompt tokens ({self.text_tokens} text + {self.image_tokens} image per "
            f"call, items: {self.items_from}), up to {self.total_completion_tokens:,} completion tokens, "
            f"~${self.usd:,.2f} at ${self.prompt_usd_per_mtok:g} / ${self.completion_usd_per_mtok:g} "
            "per million tokens"
        )


def image_tokens(model: str, max_pixels: int) -> int:
    """Tokens of one image of ``max_pixels`` (square) for this judge model."""
    if model.lower().startswith(_OPENAI_VISION):
        side = math.sqrt(max_pixels)
        width = height = min(side, 2048.0)
        if min(width, height) > 768:
            width = height = 768.0
        return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)
    return max_pixels // (28 * 28)


def _items(train_file: str) -> tuple[list[dict[str, Any]], str]:
    path = Path(train_file)
    if not path.is_file():
        return [_EXAMPLE], "a typical item (no data yet)"
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            answer = json.loads(line).get("answer")
            fields = json.loads(answer) if isinstance(answer, str) else {}
            if isinstance(fields, dict) and isinstance(fields.get("question"), str):
                items.append(fields)
    return (
        (items, f"{len(items)} from {path}") if items else ([_EXAMPLE], f"a typical item ({path} is empty)")
    )


def estimate(cfg: dict[str, Any], response_tokens: int | None = None) -> JudgeEstimate | None:
    """The estimate for a composed stage config (``recipes.to_container``); None without a judge."""
    settings = stage_judge(cfg)
    if settings is None:
        return None
    judge, easyr1 = JudgeConfig.from_dict(settings), cfg["easyr1"]
    data = easyr1["data"]
    prompt = JudgePrompt.load(judge.prompt_version)
    output = "x" * CHARS_PER_TOKEN * (response_tokens or int(data["max_response_length"]))
    items, items_from = _items(str(data["train_files"]))

    def chars(f: dict[str, Any]) -> int:
        options = tuple(str(o) for o in f.get("options") or ())
        item = JudgeItem(output, str(f["question"]), str(f.get("ground_truth", "")), "", True, options)
        return len(prompt.system) + len(prompt.render_user(item))

    lengths = [chars(fields) for fields in items]
    return JudgeEstimate(
        stage=str(cfg["stage"]),
        size=str(cfg["size"]),
        model=judge.model,
        steps=int(easyr1["trainer"]["max_steps"]),
        prompts=int(data["rollout_batch_size"]),
        rollouts=int(easyr1["worker"]["rollout"]["n"]),
        text_tokens=math.ceil(sum(lengths) / len(lengths) / CHARS_PER_TOKEN),
        image_tokens=image_tokens(judge.model, int(data["max_pixels"])),
        completion_tokens=judge.max_tokens,
        prompt_usd_per_mtok=judge.prompt_usd_per_mtok,
        completion_usd_per_mtok=judge.completion_usd_per_mtok,
        items_from=items_from,
    )
