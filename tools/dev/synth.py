"""``pathvlm data synth``: synthetic, *learnable* datasets in the real PathMMU and OmniMedVQA schemas.

``tools/cli.py`` registers the command under ``pathvlm data``: the conversion code imports nothing of the
development harness.

Each image is a tiny 56x56 PNG dominated by one colour (with noise and small patches of other colours);
the colour decides the answer (``PALETTE``: red -> haemorrhage, yellow -> adipose tissue, ...) and also its
letter (options come in fixed panels of four, in palette order), so a model can learn the task from the
image alone, and tiny-model runs show learning, not only that code runs. Question texts vary (and carry a
case number) so question grouping does not collapse the split. Deterministic for a given seed.

The explanations (the SFT reasoning) come in three styles (``REASONING_STYLES``), as real explanations vary
in completeness: ``short`` names the deciding colour and cites the colour's finding; ``full`` then also rules
out two wrong options by their colour; ``bare`` names the colour only. They share their beginning, so the
colour (which decides the answer) comes first and the style is one token's choice after it. The fake judge
(``tools.dev.judge_rubric``) scores them 1.0 / 0.8 / 0.6, so r1's process reward has something to prefer.

The OOD subsets (OmniMedVQA schema) follow the same rule to a documented degree (``OMNIMEDVQA_SUBSETS``):
a colour's finding and letter carry over where the subset's option is an in-domain finding, and nothing
carries over where it is a new text; the images of ``Chest CT Scan`` have more patches of other colours.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import string
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.data.items import slugify

SIZE = 56
PALETTE = (  # (colour, RGB, PathMMU answer)
    ("red", (205, 40, 50), "Haemorrhage"),
    ("yellow", (230, 205, 60), "Adipose tissue"),
    ("blue", (45, 75, 195), "Basaloid tumour nests"),
    ("purple", (110, 50, 150), "Lymphoid infiltrate"),
    ("pink", (235, 140, 185), "Collagen-rich stroma"),
    ("brown", (125, 80, 35), "Haemosiderin deposits"),
    ("green", (50, 150, 80), "Bile-stained hepatocytes"),
    ("grey", (135, 135, 135), "Coagulative necrosis"),
)
QUESTIONS = (
    "Case {n}: which tissue component dominates this {stain} section of the {organ}?",
    "Case {n}: what is the most likely finding in this {organ} biopsy ({stain})?",
    "Case {n}: a {stain} slide from the {organ} is shown. What does it mainly contain?",
    "Case {n}: identify the predominant histological feature in this {organ} specimen.",
    "Case {n}: which option best describes this {stain}-stained {organ} tissue?",
)
# The reasoning's parts; the fake judge (tools.dev.judge_rubric) looks for exactly these cues.
FEATURE = "The section is mostly {colour}"
KNOWLEDGE = ", typical of {finding}"
ELIMINATION = " Not {colour}, so not {finding}."
REASONING_STYLES = (("full", 0.35), ("short", 0.5), ("bare", 0.15))  # (style, share of the items)
STAINS = ("H&E", "PAS", "Masson trichrome", "Giemsa", "reticulin")
ORGANS = ("liver", "lung", "skin", "colon", "breast", "kidney", "lymph node", "stomach")
# subset -> (modality_type, options in letter order (None: the in-domain finding of that palette entry),
# first palette entry of the panel, patches of other colours per image (PathMMU: 1-3)). The image's colour
# decides the answer as in-domain; the rule transfers where the option is the in-domain finding at its
# in-domain letter: ISIC2020 fully, Chest CT Scan fully but on busier images, Diabetic Retinopathy for two of
# four options, Retinal OCT-C8 not at all (new texts: a floor every model should stay near).
OMNIMEDVQA_SUBSETS: dict[str, tuple[str, tuple[str | None, ...], int, tuple[int, int]]] = {
    "Chest CT Scan": ("CT", (None, None, None, None), 0, (3, 6)),
    "ISIC2020": ("Dermoscopy", (None, None, None, None), 4, (1, 4)),
    "Retinal OCT-C8": (
        "OCT",
        ("AMD", "Drusen", "Diabetic macular edema", "Choroidal neovascularization"),
        4,
        (1, 4),
    ),
    "Diabetic Retinopathy": ("Fundus Photography", (None, "Mild DR", None, "Proliferative DR"), 0, (1, 4)),
}


def synthetic_png(rgb: Sequence[int], seed: int, index: int, patches: tuple[int, int] = (1, 4)) -> bytes:
    """A 56x56 PNG dominated by ``rgb``: noise, ``patches`` (low, high exclusive) small patches of other
    colours, and a unique pixel."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng([seed, index])
    pixels = np.array(rgb, dtype=np.int16) + rng.integers(-20, 21, size=(SIZE, SIZE, 3))
    for _ in range(int(rng.integers(*patches))):  # 3 patches cover at most 3 * 12 * 12 / 56^2 = 14 %
        y, x = rng.integers(0, SIZE - 12, size=2)
        pixels[y : y + 12, x : x + 12] = PALETTE[int(rng.integers(len(PALETTE)))][1]
    pixels[0, 0] = (index >> 16 & 255, index >> 8 & 255, index & 255)  # no two images are identical
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_png(folder: Path, png: bytes) -> str:
    """Save under a content-hash name, as PathMMU names its images; returns the file name."""
    name = hashlib.sha256(png).hexdigest()[:32] + ".png"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(png)
    return name


def reasoning(label: int, style: str) -> str:
    """The explanation of an item whose image is ``PALETTE[label]``'s colour, in ``style`` (module doc);
    ``full`` rules out the next two findings of the panel."""
    colour, finding = PALETTE[label][0], PALETTE[label][2].lower()
    text = FEATURE.format(colour=colour)
    if style in ("full", "short"):
        text += KNOWLEDGE.format(finding=finding)
    text += "."
    if style == "full":
        panel = label // 4 * 4
        for step in (1, 2):
            other = PALETTE[panel + (label - panel + step) % 4]
            text += ELIMINATION.format(colour=other[0], finding=other[2].lower())
    return text


def corpus() -> list[str]:
    """Every synthetic text template filled in (the tiny model's tokenizer learns them as short tokens)."""
    texts = [
        f"<think>{reasoning(label, style)}</think><answer>{letter}) {PALETTE[label][2]}</answer>"
        for label, letter in enumerate("ABCDABCD")
        for style, _ in REASONING_STYLES
    ]
    return texts + [text for _, options, _, _ in OMNIMEDVQA_SUBSETS.values() for text in options if text]


def write_synthetic_pathmmu(root: Path, items: int, seed: int = 0) -> Path:
    """PathMMU-schema dataset under ``root``: ``data.json`` + ``images/``; ``items`` unique items over
    PubMed and EduContent (val and test splits), plus a test_tiny that repeats some test items."""
    root = Path(root)
    rng = random.Random(seed)
    answers = [tissue for _, _, tissue in PALETTE]
    data: dict[str, dict[str, list[dict[str, Any]]]] = {}
    pubmed = round(items * 0.57)
    previous: tuple[str, int] | None = None
    for subset, count, offset in (("PubMed", pubmed, 0), ("EduContent", items - pubmed, pubmed)):
        val = max(1, count // 12) if count > 1 else 0
        splits: dict[str, list[dict[str, Any]]] = {"val": [], "test": []}
        for n in range(count):
            index = offset + n
            if previous is not None and n % 20 == 19:  # some images carry two questions, as in PathMMU
                img, label = previous
            else:
                label = rng.randrange(len(PALETTE))
                img = _write_png(root / "images", synthetic_png(PALETTE[label][1], seed, index))
            previous = (img, label)
            # The four answers of the correct one's panel (palette entries 0-3 or 4-7), in palette order: the
            # letter and the text are then both a function of the image's colour, so even the tiny model can
            # learn the task within a CPU smoke run; shuffled options would also require copying the letter
            # from the prompt, which a 2-layer model does not learn in minutes.
            texts = answers[label // 4 * 4 : label // 4 * 4 + 4]
            options = [f"{string.ascii_uppercase[i]}) {text}" for i, text in enumerate(texts)]
            styles, weights = zip(*REASONING_STYLES, strict=True)
            style = rng.choices(styles, weights)[0]
            item: dict[str, Any] = {
                "No": n,
                "img": img,
                "question": rng.choice(QUESTIONS).format(
                    n=index, stain=rng.choice(STAINS), organ=rng.choice(ORGANS)
                ),
                "options": options,
                "answer": options[texts.index(answers[label])],
                "explanation": reasoning(label, style),
            }
            if n % 50 == 49:  # some items lack an explanation, as in PathMMU
                del item["explanation"]
            splits["val" if n < val else "test"].append(item)
        splits["test_tiny"] = [dict(item) for item in splits["test"][::6]]  # test_tiny repeats test items
        data[subset] = splits
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return root


def write_synthetic_omnimedvqa(root: Path, items_per_subset: int, seed: int = 0) -> Path:
    """OmniMedVQA-schema dataset under ``root``: ``QA_information/Open-access/<Subset>.json`` for the four
    OOD subsets (``OMNIMEDVQA_SUBSETS``) and their images under ``Images/<Subset>/``; 2 to 4 options (the
    trailing ones dropped at times, never the answer, so letters keep their in-domain meaning)."""
    root = Path(root)
    rng = random.Random(seed)
    for number, (subset, (modality, options, panel, patches)) in enumerate(OMNIMEDVQA_SUBSETS.items()):
        texts = [text or PALETTE[panel + i][2] for i, text in enumerate(options)]
        rows = []
        for n in range(items_per_subset):
            position = rng.randrange(len(texts))
            png = synthetic_png(PALETTE[panel + position][1], seed, (number + 1) << 20 | n, patches)
            img = _write_png(root / "Images" / subset, png)
            row = {
                "question_id": f"{slugify(subset)}_{n:05d}",
                "question_type": "Disease Diagnosis",
                "question": f"What does this {modality} image (case {n}) most likely show?",
                "gt_answer": texts[position],
                "image_path": f"Images/{subset}/{img}",
                "dataset": subset,
                "modality_type": modality,
            }
            # C/D absent at times, as in OmniMedVQA
            shown = texts[: max(rng.choice((2, 3, 4, 4)), position + 1)]
            row.update({f"option_{string.ascii_uppercase[i]}": text for i, text in enumerate(shown)})
            rows.append(row)
        path = root / "QA_information" / "Open-access" / f"{subset}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return root


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "synth",
        help="write a small learnable dataset in the real PathMMU or OmniMedVQA schema",
        description="A dataset whose answer is decidable from the image (its dominant colour), in the real "
        "source schema, for tests and tiny-model runs.",
    )
    p.add_argument("--out", type=Path, required=True, help="folder to write the source-schema dataset to")
    p.add_argument(
        "--items", type=int, required=True, help="unique items (pathmmu) or items per subset (omnimedvqa)"
    )
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument(
        "--format", choices=("pathmmu", "omnimedvqa"), default="pathmmu", help="schema (default: pathmmu)"
    )
    p.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    if args.items < 1:
        print(f"error: --items must be at least 1, got {args.items}", file=sys.stderr)
        return 1
    write = write_synthetic_pathmmu if args.format == "pathmmu" else write_synthetic_omnimedvqa
    print(
        f"synthetic {args.format} dataset written to {write(args.out, args.items, seed=args.seed)}",
        file=sys.stderr,
    )
    return 0
