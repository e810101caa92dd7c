"""The authors' two 2026 scorings of a multiple-choice answer, beside our strict reward-based ``correct``.

From their ``scripts/external_vqa_contract.py`` (github:Freddie1946/myr1), used for the OmniMedVQA columns of
``protocol/final_unified_results_tables_20260814.json``:

- **official** (``official_most_similar_correct``): OmniMedVQA's own evaluator: the option text most similar
  to the *whole* response (``difflib.SequenceMatcher(None, option, response).ratio()``, the first option on
  a tie, none when every ratio is 0) is the prediction;
- **contract aligned** (``contract_aligned_correct``): first the final answer is taken out of the response
  (the last ``<answer>…</answer>``, else the last ``answer is/: …`` line, else the whole response); if it
  starts with an option letter A-D (``"C"``, ``"(C)"``, ``"C) …"``; case-insensitive, as theirs) that letter
  is the prediction, else the option text most similar to the extracted answer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from tools.common.prompt import OPTION_RE

SCORINGS = ("contract_aligned", "official")
ANSWER_TAG = re.compile(r"<answer\b[^>]*>\s*(.*?)(?:</answer\s*>|$)", re.I | re.S)
ANSWER_MARKER = re.compile(r"(?:final\s+answer|answer)\s*(?:is|:)\s*(.+?)(?:\n|$)", re.I)
LEADING_LETTER = re.compile(r"^\s*\(?\s*([A-D])(?=[\s).,:;\-]|$)", re.I)


def most_similar(response: str, texts: Sequence[str]) -> int | None:
    """Index of the option text most similar to ``response`` (first on a tie), None if all ratios are 0."""
    ratios = [difflib.SequenceMatcher(None, text, response).ratio() for text in texts]
    return ratios.index(max(ratios)) if ratios and max(ratios) > 0 else None


def final_answer(response: str) -> str:
    """The answer the response commits to: last ``<answer>`` content, else an ``answer is`` line, else all."""
    tagged = ANSWER_TAG.findall(response)
    if tagged:
        return tagged[-1].strip().rstrip("</ ")
    marked = ANSWER_MARKER.findall(response)
    return marked[-1].strip() if marked else response.strip()


def authors_scorings(response: str, options: Sequence[str], answer: str) -> dict[str, bool]:
    """``official_correct`` and ``contract_aligned_correct`` of one response (options ``"X) text"``)."""
    letters = [OPTION_RE.match(option).group(1) for option in options]
    texts = [OPTION_RE.match(option).group(2) for option in options]
    target = OPTION_RE.match(answer).group(1)
    official = most_similar(response, texts)
    extracted = final_answer(response)
    letter = LEADING_LETTER.match(extracted)
    if letter and letter.group(1).upper() in letters:
        aligned: str | None = letter.group(1).upper()
    else:
        index = most_similar(extracted, texts)
        aligned = letters[index] if index is not None else None
    return {
        "official_correct": official is not None and letters[official] == target,
        "contract_aligned_correct": aligned == target,
    }
