"""Rule rewards, table-driven: format, accuracy and the answer parser shared with evaluation."""

from __future__ import annotations

import json

import pytest

from rewards import accuracy_reward, extract_answer, format_reward, parse_choice

GT = "C) Adenocarcinoma"
GT_JSON = json.dumps({"ground_truth": GT, "question": "What is shown?", "image": "/img.png", "id": "x1"})
LONG_THINK = "The glands are crowded and back-to-back. " * 2000

FORMAT_CASES = [
    ("<think>glands</think><answer>C) Adenocarcinoma</answer>", 1.0, "canonical"),
    ("  \n<think>a</think>\n\n<answer>C) x</answer>\n ", 1.0, "surrounding and between whitespace"),
    ("<think>line 1\nline 2</think><answer>C)\nx</answer>", 1.0, "newlines inside"),
    ("<think>核心 — α-fetoprotein ✓</think><answer>C) Adénocarcinome</answer>", 1.0, "unicode"),
    (f"<think>{LONG_THINK}</think><answer>C) x</answer>", 1.0, "very long output"),
    ("<think>C) is wrong, B) too</think><answer>A) x</answer>", 1.0, "option-like text in think"),
    ("<think></think><answer>C) x</answer>", 0.0, "empty think"),
    ("<think>  \n </think><answer>C) x</answer>", 0.0, "whitespace-only think"),
    ("<think>a</think><answer> </answer>", 0.0, "empty answer"),
    ("<answer>C) x</answer><think>a</think>", 0.0, "wrong order"),
    ("<think>a</think><answer>C) x</answer> Hope this helps.", 0.0, "prose after </answer>"),
    ("Sure! <think>a</think><answer>C) x</answer>", 0.0, "prose before <think>"),
    ("<think>a</think> so <answer>C) x</answer>", 0.0, "prose between blocks"),
    ("<think>a</think><answer>C) x</answer><answer>D) y</answer>", 0.0, "duplicated answer"),
    ("<think>a</think><think>b</think><answer>C) x</answer>", 0.0, "duplicated think"),
    ("<think>a<think>b</think></think><answer>C) x</answer>", 0.0, "nested think"),
    ("<think>a</think><answer><answer>C) x</answer></answer>", 0.0, "nested answer"),
    ("<think>a <answer>B) y</answer></think><answer>C) x</answer>", 0.0, "answer tags inside think"),
    ("<THINK>a</THINK><ANSWER>C) x</ANSWER>", 0.0, "upper-case tags"),
    ("<think>a</think><Answer>C) x</Answer>", 0.0, "mixed-case tags"),
    ("<think>a <Answer></think><answer>C) x</answer>", 0.0, "stray mixed-case tag inside"),
    ("<think>a</think><answer>C) x", 0.0, "unclosed answer"),
    ("<think>a<answer>C) x</answer>", 0.0, "unclosed think"),
    ("C) Adenocarcinoma", 0.0, "no tags"),
    ("", 0.0, "empty"),
]


@pytest.mark.parametrize(("response", "expected", "case"), FORMAT_CASES, ids=[c[2] for c in FORMAT_CASES])
def test_format_reward(response: str, expected: float, case: str) -> None:
    assert format_reward(response) == expected, case


def wrap(answer: str) -> str:
    return f"<think>reasoning</think><answer>{answer}</answer>"


ACCURACY_CASES = [
    (wrap("C) Adenocarcinoma"), GT, 1.0, "canonical"),
    (wrap("C) Adenocarcinoma"), GT_JSON, 1.0, "ground truth as the EasyR1 answer JSON"),
    (wrap("C. Adenocarcinoma"), GT, 1.0, "letter form C."),
    (wrap("(C) Adenocarcinoma"), GT, 1.0, "letter form (C)"),
    (wrap("C: Adenocarcinoma"), GT, 1.0, "letter form C:"),
    (wrap("  C)   adenocarcinoma.  "), GT, 1.0, "case, spaces, trailing period"),
    (wrap("C)\nADENOCARCINOMA"), GT, 1.0, "newline after the marker"),
    (wrap("（C） Adenocarcinoma"), GT, 1.0, "full-width parentheses"),
    ("no tags but <answer>C) Adenocarcinoma</answer> prose", GT, 1.0, "accuracy ignores format"),
    (
        wrap("B) Squamous cell carcinoma") + "<answer>C) Adenocarcinoma</answer>",
        GT,
        1.0,
        "last answer block counts",
    ),
    (wrap("C) Adenocarcinoma") + "<answer>B) Lymphoma</answer>", GT, 0.0, "last answer block is wrong"),
    (wrap("<answer>C) Adenocarcinoma</answer>"), GT, 1.0, "nested: innermost of the last block"),
    (wrap("C) Adenocarcinoma") + " <answer>D) unclosed", GT, 1.0, "unclosed trailing block ignored"),
    (wrap("C"), GT, 0.0, "letter alone"),
    (wrap("C)"), GT, 0.0, "marker alone"),
    (wrap("Adenocarcinoma"), GT, 0.0, "text alone"),
    (wrap("B) Adenocarcinoma"), GT, 0.0, "wrong pairing: text of C, letter B"),
    (wrap("C) Lymphoma"), GT, 0.0, "wrong pairing: letter C, other text"),
    (wrap("C) Adenocarcinoma, B) Lymphoma"), GT, 0.0, "enumeration"),
    (wrap("C) Adenocarcinoma or D) Sarcoma"), GT, 0.0, "hedge"),
    (wrap("C) Adenocarcinoma\nD) Sarcoma"), GT, 0.0, "one option per line"),
    (wrap("C) Adenocarcinoma, probably"), GT, 0.0, "extra words"),
    (wrap("c) adenocarcinoma"), GT, 0.0, "lower-case letter is not a marker"),
    ("<think>C) Adenocarcinoma</think>", GT, 0.0, "no answer block"),
    (wrap(""), GT, 0.0, "empty answer"),
    (wrap("C) Adenocarcinoma"), "not an option", 0.0, "unparseable ground truth"),
    (wrap("C) Adenocarcinoma"), '{"question": "no ground truth"}', 0.0, "JSON without ground_truth"),
    (wrap("B) Hepatitis B."), "B) Hepatitis B.", 1.0, "option text ends with another letter"),
    (wrap("B) Hepatitis B"), "B) Hepatitis B.", 1.0, "trailing period optional"),
    (wrap("D) Type A) fibres"), "D) Type A) fibres", 1.0, "option text contains a marker-like letter"),
    (wrap("A) Vitamin B deficiency"), "A) Vitamin B deficiency", 1.0, "letter inside option text"),
    (
        wrap("A) Vitamin B deficiency"),
        "B) Vitamin B deficiency",
        0.0,
        "letter in text is not the letter",
    ),
    (wrap("E) Ménétrier disease"), "E) ménétrier disease", 1.0, "unicode text, case-insensitive"),
    (wrap("C) Hematoxylin and eosin (H&E) stain"), "C) Hematoxylin and eosin (H&E) stain", 1.0, "(H&E)"),
    (wrap("C) B) Skin"), "C) B) Skin", 1.0, "option text starts with a marker"),
    (wrap("D) Both A) and B)"), "D) Both A) and B)", 1.0, "option text names other options"),
    (wrap("A) Both A) and B)"), "D) Both A) and B)", 0.0, "that text under another letter"),
    (wrap("D) Both A)"), "D) Both A) and B)", 0.0, "part of such an option"),
    (wrap("C) Type I\npneumocytes"), "C) Type I pneumocytes", 1.0, "newline inside the option text"),
]


@pytest.mark.parametrize(
    ("response", "truth", "expected", "case"), ACCURACY_CASES, ids=[c[3] for c in ACCURACY_CASES]
)
def test_accuracy_reward(response: str, truth: str, expected: float, case: str) -> None:
    assert accuracy_reward(response, truth) == expected, case


PARSE_CASES = [
    ("C) Adenocarcinoma", ("C", "adenocarcinoma")),
    ("(B) Squamous  cell carcinoma.", ("B", "squamous cell carcinoma")),
    ("D: Hepatitis B.", ("D", "hepatitis b")),
    ("A. Type A) fibres", ("A", "type a) fibres")),
    ("C", None),
    ("C.", None),
    ("Adenocarcinoma", None),
    ("A) x, B) y", None),
    ("A) x or (B) y", None),
    ("A) x / B) y", None),
    ("A) x\nB) y", None),
    ("A) x & B) y", None),
    ("C) Hematoxylin and eosin (H&E) stain", ("C", "hematoxylin and eosin (h&e) stain")),
    ("B) Anti-TNF/IL-1 therapy", ("B", "anti-tnf/il-1 therapy")),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_choice(text: str, expected: tuple[str, str] | None) -> None:
    assert parse_choice(text) == expected


def test_extract_answer_takes_the_last_complete_block() -> None:
    assert extract_answer("<answer>A</answer> x <answer>B</answer>") == "B"
    assert extract_answer("<answer>A</answer><answer>B") == "A"
    assert extract_answer("<answer><answer>C</answer></answer>") == "C"
    assert extract_answer("no answer") is None
    assert extract_answer("</answer> <answer>") is None
