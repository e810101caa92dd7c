"""The fake judge's rubric for the synthetic task: the paper's -0.4 rubric, from the image and the options."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest

from rewards.judge import JudgeItem
from rewards.judge.chat import load_image
from rewards.judge.prompt import JudgePrompt
from tools.dev.judge_rubric import Reference, grade, image_colour, reference
from tools.dev.judge_server import JudgeServer, fake_scores
from tools.dev.synth import PALETTE, reasoning, synthetic_png

OPTIONS = ("A) Haemorrhage", "B) Adipose tissue", "C) Basaloid tumour nests", "D) Lymphoid infiltrate")
RED = Reference("red", tuple(o[3:].lower() for o in OPTIONS), "haemorrhage")
FULL, SHORT, BARE = (reasoning(0, style) for style in ("full", "short", "bare"))


def out(think: str, answer: str = "A) Haemorrhage") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


@pytest.mark.parametrize(
    ("think", "answer", "expected", "why"),
    [
        (FULL, "A) Haemorrhage", (1.0, 1.0), "colour, two options ruled out by colour, the rule cited"),
        (SHORT, "A) Haemorrhage", (0.6, 1.0), "no elimination"),
        (BARE, "A) Haemorrhage", (0.2, 1.0), "the colour only"),
        ("", "A) Haemorrhage", (0.0, 1.0), "no reasoning"),
        (
            f"{SHORT} Not yellow, so not adipose tissue.",
            "A) Haemorrhage",
            (0.6, 1.0),
            "one option ruled out is not enough",
        ),
        (
            f"{SHORT} Not adipose tissue. Not basaloid tumour nests.",
            "A) Haemorrhage",
            (0.6, 1.0),
            "options ruled out without a reason (a colour)",
        ),
        (
            "The section is mostly blue, typical of basaloid tumour nests.",
            "C) Basaloid tumour nests",
            (0.2, 0.6),
            "wrong colour for the image: feature missing, contradicts the image",
        ),
        (SHORT, "B) Adipose tissue", (0.2, 0.6), "argues for haemorrhage, answers adipose tissue"),
        (
            FULL.replace("typical of haemorrhage", "typical of adipose tissue"),
            "B) Adipose tissue",
            (0.6, 0.2),
            "red cited for adipose tissue (no rule for the answer, a definition broken), answer ruled out",
        ),
        (
            f"{SHORT} Not red, so not haemorrhage.",
            "A) Haemorrhage",
            (0.6, 0.6),
            "rules out the option it answers",
        ),
    ],
)
def test_rubric_table(think: str, answer: str, expected: tuple[float, float], why: str) -> None:
    assert grade(out(think, answer), RED) == expected, why


def test_keyword_stuffing_does_not_score_full_marks() -> None:
    colours = " ".join(name for name, _, _ in PALETTE)
    keywords = "image stain cell feature option eliminated excluded because typical consistent with known"
    stuffed = {  # think -> its process score (mean of integrity and knowledge)
        f"The section is {colours}. {FULL}": 0.5,  # 7 colours the image does not show
        f"{FULL} {' '.join(o[3:] for o in OPTIONS)}.": 0.5,  # argues for 3 options it does not answer
        # rules out its own answer with the others
        f"Not yellow, not blue, so not {', not '.join(o[3:] for o in OPTIONS)}. {FULL}": 0.8,
        keywords: 0.5,  # the three steps' keywords: no colour, nothing ruled out with a reason
    }
    for think, want in stuffed.items():
        integrity, knowledge = grade(out(think), RED)
        assert (integrity + knowledge) / 2 == pytest.approx(want), think
    # the old keyword heuristic gave that last one full marks: the rubric is what changed
    assert fake_scores(keywords) == (1.0, 1.0)


def test_the_colour_is_read_from_the_image() -> None:
    for label, (name, rgb, _) in enumerate(PALETTE):
        url = "data:image/png;base64," + base64.b64encode(synthetic_png(rgb, 3, label)).decode()
        assert image_colour(url) == name
    grey_blue = "data:image/png;base64," + base64.b64encode(synthetic_png((90, 110, 160), 0, 0)).decode()
    assert image_colour(grey_blue) is None  # not a synthetic image
    # the image, not the standard answer, decides which colour counts as the feature
    blue = "data:image/png;base64," + base64.b64encode(synthetic_png(PALETTE[2][1], 0, 1)).decode()
    ref = reference("Case 1: what is shown?\n" + "\n".join(OPTIONS), "A) Haemorrhage", blue)
    assert ref is not None and ref.colour == "blue"
    assert reference("What is shown?\nA) Lymphoma\nB) Melanoma", "A) Lymphoma", blue) is None


def test_the_server_grades_synthetic_items_by_the_rubric(tmp_path) -> None:
    image = tmp_path / "red.png"
    image.write_bytes(synthetic_png(PALETTE[0][1], 0, 7))
    prompt = JudgePrompt.load("judge_v2")
    with JudgeServer() as server:
        for think, want in ((FULL, 1.0), (SHORT, 0.8), (BARE, 0.6), (f"{FULL} Mostly yellow.", 0.8)):
            item = JudgeItem(
                response=out(think),
                question="Case 3: which finding?",
                ground_truth="A) Haemorrhage",
                image=str(image),
                correct=True,
                options=OPTIONS,
            )
            content = [
                {"type": "text", "text": prompt.render_user(item)},
                {"type": "image_url", "image_url": {"url": load_image(image).data_url}},
            ]
            body = {"model": "fake-judge", "messages": [{"role": "user", "content": content}]}
            request = urllib.request.Request(
                f"{server.url}/chat/completions",
                json.dumps(body).encode(),
                {"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                verdict = json.loads(json.loads(response.read())["choices"][0]["message"]["content"])
            assert (verdict["integrity_score"] + verdict["knowledge_score"]) / 2 == pytest.approx(want), think
