"""The one prompt builder shared by SFT data, GRPO data, the CPU GRPO trainer and evaluation.

Every place that shows a question to a model calls ``build_prompt``, so the wording the model is
trained on is exactly the wording it is evaluated on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

IMAGE_TOKEN = "<image>"
# An option string "C) text" (also "C. text", "C: text"): its letter and its text.
OPTION_RE = re.compile(r"^\s*([A-Z])\s*[).:]\s*(\S.*?)\s*$", re.DOTALL)

ANSWER_INSTRUCTION = (
    "Think step by step inside <think></think> tags, then give the final answer inside "
    "<answer></answer> tags as the option letter followed by its text, "
    "for example <answer>C) Adenocarcinoma</answer>."
)


def build_prompt(question: str, options: Sequence[str]) -> str:
    """Question, one lettered option per line (``"A) text"``), then the answer-format instruction."""
    lines = [question.strip(), "Options:", *(option.strip() for option in options), ANSWER_INSTRUCTION]
    return "\n".join(lines)


def with_image_token(prompt: str) -> str:
    """The prompt as LLaMA-Factory and EasyR1 expect it: one ``<image>`` placeholder before the text."""
    return f"{IMAGE_TOKEN}{prompt}"
