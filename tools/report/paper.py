"""The PathVLM-R1 paper's results (Wu et al., 2025): Tables 1-3 and the comparisons its argument rests on.

Values are kept as the strings the paper prints (``"54.20"``, not ``54.2``) so the report shows them
verbatim. ``size``/``stage`` name the run of ours that reproduces a row (``base`` is the untrained
Qwen2.5-VL-Instruct); rows without them are models this project does not train or evaluate. A stage's
display name comes from its stage file (``about.label``, ``tools.recipe.registry``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.recipe.registry import sizes, stages, stands_in_for
from tools.recipe.run import API_SIZE, BASE

# Table 3 columns: OmniMedVQA subsets by their eval file slug.
OOD_SUBSETS = {
    "chest_ct_scan": "Chest CT Scan",
    "isic2020": "ISIC2020",
    "retinal_oct_c8": "Retinal OCT-C8",
    "diabetic_retinopathy": "Diabetic Retinopathy",
}


@dataclass(frozen=True)
class PaperRow:
    """One row: a model of ours (``size``/``stage``; its display name from the recipes, read when first
    shown, so importing this module reads no recipe) or another model (``name``)."""

    size: str | None
    stage: str | None
    value: str
    name: str | None = None

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        return model_label(self.size or "", self.stage or "")  # ours: both are set


# Models behind an API: ``<runs>/api/<stage>/`` (``pathvlm eval --backend openai``), by display name.
API_LABELS = {"gemini-1.5-pro": "Gemini-1.5-Pro", "gpt-4o": "GPT-4o"}


def model_label(size: str, stage: str) -> str:
    """Display name of one of our runs: ``Qwen2.5-VL-7B``, ``β-7B``, ``PathVLM-R1`` (r1 at 7B), ``GPT-4o``,
    ``tiny (stands in for β-7B)``."""
    if size == API_SIZE:
        return API_LABELS.get(stage, stage)
    stand_in = stands_in_for(size)
    if stand_in:
        return f"{size} (stands in for {model_label(stand_in, stage)})"
    if stage == BASE:
        return f"Qwen2.5-VL-{size.upper()}"
    info = stages().get(stage)
    return info.model_label(size) if info is not None else f"{stage}-{size.upper()}"


def stage_order() -> tuple[str, ...]:
    """Report row order: the base model and the stages as Table 1 lists them, then any other stage."""
    named = [row.stage for row in TABLE1 if row.stage is not None and row.size != API_SIZE]
    return tuple(dict.fromkeys([BASE, *named, *stages()]))


def size_order() -> tuple[str, ...]:
    """Report size order: the recipes' sizes, largest ``<N>b`` first, then any other."""

    def billions(size: str) -> float:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)b", size)
        return -float(match.group(1)) if match else float("inf")

    return tuple(sorted(sizes(), key=lambda s: (billions(s), s)))


# Table 1: in-domain accuracy (%) on the 1,385 PathMMU test items.
TABLE1 = (
    PaperRow("3b", "base", "44.48"),
    PaperRow("7b", "base", "51.55"),
    PaperRow("32b", "base", "54.20"),  # make baselines SIZE=32b
    PaperRow(None, None, "53.00", name="HuatuoGPT-Vision-7B"),
    PaperRow(API_SIZE, "gemini-1.5-pro", "58.40"),
    PaperRow("7b", "alpha", "57.59"),
    PaperRow("7b", "beta", "63.89"),
    PaperRow("7b", "gamma", "59.92"),
    PaperRow("7b", "delta", "52.85"),
    PaperRow("7b", "epsilon", "56.10"),
    PaperRow("3b", "alpha", "54.58"),
    PaperRow("3b", "beta", "56.89"),
    PaperRow("3b", "gamma", "54.44"),
    PaperRow("3b", "delta", "52.12"),
    PaperRow("3b", "epsilon", "49.60"),
    PaperRow("7b", "r1", "65.55"),
)

# Table 2: average output tokens on the in-domain test items.
TABLE2 = (
    PaperRow("7b", "base", "210.04"),
    PaperRow("7b", "beta", "80.31"),
    PaperRow("7b", "epsilon", "220.07"),
    PaperRow("7b", "r1", "94.99"),
)

# Table 3: out-of-domain accuracy (%) per OmniMedVQA subset. The paper lists the control as "γ"; the
# paper's controls are 7B models, so it is compared with our gamma at 7B.
_HUATUO = "HuatuoGPT-Vision-7B"
_TABLE3_MODELS = (("3b", "base"), ("7b", "base"), (_HUATUO, None), ("7b", "gamma"), ("7b", "r1"))
_TABLE3_VALUES = {  # one value per model above, in that order
    "chest_ct_scan": ("38.60", "48.60", "51.00", "40.60", "44.00"),
    "isic2020": ("34.59", "56.59", "34.20", "45.40", "80.00"),
    "retinal_oct_c8": ("60.40", "57.19", "48.19", "45.80", "49.20"),
    "diabetic_retinopathy": ("64.20", "70.80", "62.00", "32.00", "59.80"),
}
TABLE3: dict[str, tuple[PaperRow, ...]] = {
    subset: tuple(
        PaperRow(size, stage, value) if stage else PaperRow(None, None, value, name=size)
        for (size, stage), value in zip(_TABLE3_MODELS, values, strict=True)
    )
    for subset, values in _TABLE3_VALUES.items()
}
