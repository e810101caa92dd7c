"""Rule rewards: the output format and the multiple-choice accuracy (PathVLM-R1, section "rewards").

Both are pure string functions, shared verbatim by EasyR1, the CPU trainer and evaluation, so training and
evaluation can never disagree about what a correct answer is.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

# Every think/answer tag in any case: a well-formed response has exactly this sequence, all lower-case.
_TAG_RE = re.compile(r"</?(?:think|answer)>", re.IGNORECASE)
_TAG_SEQUENCE = ["<think>", "</think>", ANSWER_OPEN, ANSWER_CLOSE]
_FORMAT_RE = re.compile(r"<think>(.*)</think>\s*<answer>(.*)</answer>", re.DOTALL)
# An option marker at the start of an answer: "C)", "C.", "C:" or "(C)", then the option text.
_CHOICE_RE = re.compile(r"\s*(?:\(([A-Z])\)|([A-Z])[).:])\s*(.*)", re.DOTALL)
# Another option marker after a separator (start of a line; comma, semicolon, slash or "&" with a space
# beside it; "or", "and"): the answer names several options ("A) x, B) y", "A) x or (B) y", one option per
# line). A separator glued to a letter is part of a word: "(H&E) stain" names one option. The gap before the
# marker never crosses a line end (a marker after one is at a line start anyway): `\s*` there made the search
# quadratic in a run of newlines (64,000 took 47 s).
_ENUMERATION_RE = re.compile(
    r"(?:^|[,;/&]\s|\s[,;/&]|\b(?i:or|and)\b)[^\S\n]*(?:\([A-Z]\)|[A-Z][).:])(?=\s|$)", re.MULTILINE
)


def format_reward(response: str) -> float:
    """1.0 iff ``response`` is exactly ``<think>…</think>`` then ``<answer>…</answer>``, both non-empty.

    Surrounding whitespace is ignored and whitespace may separate the blocks; tags are lower-case and appear
    exactly once (a tag in any case inside a block, nesting or a second block fails); nothing may precede,
    separate or follow the blocks.
    """
    text = response.strip()
    blocks = _FORMAT_RE.fullmatch(text) if _TAG_RE.findall(text) == _TAG_SEQUENCE else None
    return 1.0 if blocks and blocks[1].strip() and blocks[2].strip() else 0.0


def extract_answer(response: str) -> str | None:
    """The content of the last complete ``<answer>…</answer>`` block (innermost if nested), or None."""
    last_close = response.rfind(ANSWER_CLOSE)
    start = response.rfind(ANSWER_OPEN, 0, last_close) if last_close >= 0 else -1
    if start < 0:
        return None
    start += len(ANSWER_OPEN)
    return response[start : response.find(ANSWER_CLOSE, start)]


def normalize_option_text(text: str) -> str:
    """An option text as answers compare: NFKC, case-folded, whitespace-collapsed, no trailing periods."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).rstrip(". ")


def _choice(text: str, *, single: bool) -> tuple[str, str] | None:
    """(letter, normalised text) after a leading option marker; with ``single``, None for several options."""
    match = _CHOICE_RE.fullmatch(unicodedata.normalize("NFKC", text))
    if match is None or (single and _ENUMERATION_RE.search(match.group(3))):
        return None
    option_text = normalize_option_text(match.group(3))
    return (match.group(1) or match.group(2), option_text) if option_text else None


def parse_choice(text: str) -> tuple[str, str] | None:
    """The (letter, normalised option text) that an answer names, or None.

    Letter forms ``C)``, ``C.``, ``(C)`` and ``C:`` are equal (upper-case letters; full-width forms are
    NFKC-folded); the text is case-folded, whitespace-collapsed and loses trailing periods. None for a letter
    alone, a text alone, or several options (another marker after a separator: ``A) x, B) y``,
    ``A) x or B) y``, one option per line). Option text that merely contains a letter (``Hepatitis B.``,
    ``Type A) fibres``) is one option.
    """
    return _choice(text, single=True)


@lru_cache(maxsize=65536)
def ground_truth_choice(ground_truth: str) -> tuple[str, str] | None:
    """The ground truth's (letter, text): from ``"C) text"`` or the JSON packed in EasyR1's answer column."""
    text = ground_truth.strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text)["ground_truth"])
        except (ValueError, KeyError, TypeError):
            return None
    # Trusted text: an option's own wording may look like a second marker, so no enumeration check here.
    return _choice(text, single=False)


def accuracy_reward(response: str, ground_truth: str) -> float:
    """1.0 iff the last ``<answer>`` block is the ground-truth option, letter and text matching; else 0.0.

    The whole text after the marker must equal the option's text, so an answer naming several options
    (``C) x, B) y``) never matches, while an option whose own wording looks like a list
    (``D) Both A) and B)``) matches itself.
    """
    content = extract_answer(response)
    if content is None:
        return 0.0
    expected = ground_truth_choice(ground_truth)
    if expected is None:
        return 0.0
    return 1.0 if _choice(content, single=False) == expected else 0.0
