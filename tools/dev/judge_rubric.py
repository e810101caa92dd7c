"""The fake judge's rubric for the synthetic task (``tools.dev.synth``): a score that means something.

The paper's rubric, applied with the synthetic task's rule (an image's dominant colour decides its finding,
``PALETTE``) to the reasoning inside ``<think>`` (split into clauses at ``.``, ``;`` and new lines; a clause
with ``not``, ``no``, ``rule out``, ``exclude``, ``eliminate`` or ``unlikely`` is a *negated* one):

- integrity (1.0, -0.4 per missing step, floor 0): (a) image feature: an affirmed clause names the image's
  dominant colour, read from the image itself; (b) elimination: at least 2 wrong options are each ruled out
  by a negated clause that names them and a colour (the reason); (c) knowledge: an affirmed clause cites the
  rule for the answered option (its text with its colour);
- knowledge (1.0, -0.4 per violation, floor 0): each colour affirmed that is not the image's (contradicts the
  image); each affirmed pairing of a colour with a finding of another colour (violates the rule's
  definitions); a contradiction between reasoning and answer: the answered option ruled out, or an affirmed
  clause arguing for another option.

So the full explanation style scores (1.0, 1.0), the short one (0.6, 1.0), the bare one (0.2, 1.0); a think
that stuffs every colour and option name loses a point of knowledge per wrong colour and contradiction.
Items outside the synthetic task (``reference`` returns None) are graded by the server's keyword heuristic.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass

from tools.dev.synth import OMNIMEDVQA_SUBSETS, PALETTE

PENALTY = 0.4
MIN_ELIMINATED = 2  # judge_v2: at least 2 incorrect options ruled out
NEGATION = re.compile(r"\b(not|no|rule[sd]? out|exclud\w*|eliminat\w*|unlikely)\b")
CLAUSE = re.compile(r"[.;\n]+")
THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
ANSWER = re.compile(r"<answer>\s*(?:[A-Z]\)\s*)?(.*?)\s*</answer>", re.DOTALL)
OPTION = re.compile(r"^([A-Z])\) (.+)$", re.MULTILINE)
COLOUR_OF = {finding.lower(): colour for colour, _, finding in PALETTE}
KNOWN_ANSWERS = set(COLOUR_OF) | {
    text.lower() for _, options, _, _ in OMNIMEDVQA_SUBSETS.values() for text in options if text
}
MAX_COLOUR_DISTANCE = 40  # per channel: a synthetic image's median is within the noise of its colour


@dataclass(frozen=True)
class Reference:
    """What the judge knows of an item: the image's colour and the option texts (lower case)."""

    colour: str | None
    options: tuple[str, ...]
    standard: str


def image_colour(data_url: str) -> str | None:
    """The palette colour of a synthetic image (its per-channel median), None for any other image."""
    import numpy as np
    from PIL import Image

    try:
        payload = base64.b64decode(data_url.split(",", 1)[1])
        with Image.open(io.BytesIO(payload)) as image:
            median = np.median(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)
    except (IndexError, ValueError, OSError):
        return None
    distance, colour = min((float(np.abs(median - rgb).max()), name) for name, rgb, _ in PALETTE)
    return colour if distance <= MAX_COLOUR_DISTANCE else None


def reference(question: str, standard_answer: str, data_url: str | None) -> Reference | None:
    """The item's reference if it belongs to the synthetic task (its standard answer is one of the task's
    answers), else None. The colour comes from the image; without one, from the standard answer's rule."""
    standard = re.sub(r"^[A-Z]\)\s*", "", standard_answer.strip()).lower()
    if standard not in KNOWN_ANSWERS:
        return None
    colour = image_colour(data_url) if data_url else None
    options = tuple(text.strip().lower() for _, text in OPTION.findall(question))
    return Reference(colour or COLOUR_OF.get(standard), options, standard)


def _colours(clause: str) -> set[str]:
    return {name for name, _, _ in PALETTE if re.search(rf"\b{name}\b", clause)}


def _findings(clause: str, options: tuple[str, ...]) -> set[str]:
    return {option for option in options if option in clause}


def grade(output: str, ref: Reference) -> tuple[float, float]:
    """(integrity, knowledge) of a model output against the item's reference (module docstring)."""
    think = THINK.search(output)
    answer = ANSWER.search(output)
    answered = answer.group(1).strip().lower() if answer else ""
    clauses = [c.strip() for c in CLAUSE.split((think.group(1) if think else "").lower()) if c.strip()]
    negated = [c for c in clauses if NEGATION.search(c)]
    affirmed = [c for c in clauses if not NEGATION.search(c)]
    affirmed_colours = set().union(*map(_colours, affirmed)) if affirmed else set()

    feature = ref.colour is not None and ref.colour in affirmed_colours
    eliminated = {
        option
        for clause in negated
        if _colours(clause)
        for option in _findings(clause, ref.options)
        if option != ref.standard
    }
    wanted = COLOUR_OF.get(answered)
    cited = any(
        answered and answered in clause and (wanted in _colours(clause) if wanted else _colours(clause))
        for clause in affirmed
    )
    missing = (not feature) + (len(eliminated) < MIN_ELIMINATED) + (not cited)

    violations = len(affirmed_colours - {ref.colour})
    violations += len(
        {
            (colour, finding)
            for clause in affirmed
            for colour in _colours(clause)
            for finding in _findings(clause, ref.options)
            if COLOUR_OF.get(finding, colour) != colour
        }
    )
    if answered and any(answered in clause for clause in negated):
        violations += 1  # rules out the option it answers
    others = {f for clause in affirmed for f in _findings(clause, ref.options) if f != answered}
    violations += len(others)  # argues for options it does not answer
    return score(missing), score(violations)


def score(penalties: int) -> float:
    """The paper's rubric: 1.0 less 0.4 per penalty, floor 0."""
    return round(max(0.0, 1 - PENALTY * penalties), 6)
