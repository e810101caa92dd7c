"""The authors' audited 2026 results on their image-disjoint split (``authors-v2``): the reference for our
runs on that split, as the paper's tables (``tools.report.paper``) are for runs on the paper-style split.

Source: ``github:Freddie1946/myr1``

- ``protocol/final_unified_results_tables_20260814.json`` (generated 2026-08-13T18:04:01Z; single
  training seed; accuracy as a fraction): ``core_current_contract`` (10 models) and ``ratio_ablation``
  (3 models), every number of theirs kept below as printed there. Benchmarks: PathMMU validation
  (385 QA) and test (999 QA on 707 images) of ``data/pathmmu_image_disjoint_v2/``; PathVQA closed-ended
  as fixed A=Yes/B=No (test, 3,362) with parse and length-cap rates; OmniMedVQA, all 8,518 items of the
  four subsets, under the "contract aligned" and the "official" scoring; MMMU non-medical dev (116
  items). Its ``repeated_inference`` block (5 sampled decodings per model: decoding-seed spread,
  "separate from the case/bootstrap uncertainty") is not a reference for greedy runs and is left out.
- ``protocol/final_core_pathmmu_statistics_20260814/cluster_bootstrap_results.json`` (seed 20260814, 10,000
  replicates, image-cluster bootstrap, paired cluster draws): test999 accuracy CIs of three models and the
  paired differences against GPT-4o Stage 3 step 1500.

Our stages at 7B stand beside their models by what they are: ``base`` the untrained Qwen2.5-VL-7B; ``alpha``
(full SFT on the sft split) their historical full SFT3000; ``beta`` (outcome-reward GRPO) their rule-RL n8
step 1000, the parent of their Stage 3 and the comparator of their cluster-bootstrap test; ``r1`` (judge
process reward) their GPT-4o Stage 3 at its last step, 1500. Their other models are reference-only rows.
"""

from __future__ import annotations

from dataclasses import dataclass

# The data manifest's "split" for their split (`pathvlm data pathmmu --split authors-v2`).
SPLIT = "authors-v2"
SOURCE = "github:Freddie1946/myr1 protocol/final_unified_results_tables_20260814.json"
STATISTICS_SOURCE = (
    "github:Freddie1946/myr1 protocol/final_core_pathmmu_statistics_20260814/cluster_bootstrap_results.json"
)
SIZE = "7b"  # their models are 7B

# Their metric keys → (our eval dataset: the stem of the `pathvlm data` eval file, what it is).
OMNIMEDVQA = "omnimedvqa"  # not an evaluation: our four subset evaluations (paper.OOD_SUBSETS) pooled
METRICS = {
    "pathmmu_val": ("validation", "PathMMU validation (val385)"),
    "pathmmu_test": ("test", "PathMMU test (test999)"),
    "pathvqa_fixed_ab": ("pathvqa_closed", "PathVQA closed-ended, A/B (test 3,362)"),
    "omnimed_contract_aligned": (OMNIMEDVQA, "OmniMedVQA, 4 subsets (8,518), contract-aligned scoring"),
    "omnimed_official": (OMNIMEDVQA, "OmniMedVQA, 4 subsets (8,518), official scoring"),
    "mmmu_nonmedical": ("mmmu_nonmedical_dev", "MMMU non-medical dev (116)"),
}
# Their metric keys scored their way → our name of that scoring (tools.evaluation.scorings.SCORINGS; each
# evaluation record carries ``<name>_correct``); the other metrics are our strict accuracy.
SCORED = {"omnimed_contract_aligned": "contract_aligned", "omnimed_official": "official"}
RATES = ("pathvqa_parse_rate", "pathvqa_cap_rate")  # PathVQA: answers the parser read / that hit the cap


@dataclass(frozen=True)
class AuthorsRow:
    """One of their models: its name there, the stage of ours beside it (or None), its numbers (fractions;
    None where they report none)."""

    model: str
    stage: str | None
    values: dict[str, float | None]


def _row(model: str, stage: str | None, *numbers: float | None) -> AuthorsRow:
    keys = ("pathmmu_val", "pathmmu_test", "pathvqa_fixed_ab", *RATES)
    keys += ("omnimed_contract_aligned", "omnimed_official", "mmmu_nonmedical")
    return AuthorsRow(model, stage, dict(zip(keys, numbers, strict=True)))


# Columns: pathmmu_val, pathmmu_test, pathvqa_fixed_ab, pathvqa_parse_rate, pathvqa_cap_rate,
# omnimed_contract_aligned, omnimed_official, mmmu_nonmedical.
CORE = (
    _row(
        "Base Qwen2.5-VL-7B", "base", 0.509090909090909, 0.4864864864864865, 0.6055919095776323,
        0.9735276621058894, 0.0, 0.5900446114111294, 0.5738436252641466, 0.5603448275862069,
    ),
    _row(
        "Historical full-SFT3000", "alpha", 0.5974025974025974, 0.5825825825825826, 0.5624628197501487,
        0.9991076740035693, 0.0, 0.5097440713782578, 0.48450340455505986, 0.43103448275862066,
    ),
    _row(
        "Historical Stage2 outcome-RL", None, 0.6103896103896104, 0.6096096096096096, 0.5559190957763236,
        0.9991076740035693, 0.0, None, None, 0.47413793103448276,
    ),
    _row(
        "Current L-r16 SFT3000 step80", None, 0.5454545454545454, 0.5665665665665666, 0.6198691255205235,
        0.998810232004759, 0.0, 0.6165766611880723, 0.5741958206151678, 0.49137931034482757,
    ),
    _row(
        "Full rule-RL n4 step1000", None, 0.5974025974025974, 0.6116116116116116, 0.6261154074955384,
        0.9979179060083284, 0.0, 0.6969945996712843, 0.5719652500586992, 0.5344827586206896,
    ),
    _row(
        "Full rule-RL n8 step1000", "beta", 0.6415584415584416, 0.6346346346346347, 0.6261154074955384,
        0.9979179060083284, 0.0, 0.6949988260154966, 0.5679737027471238, 0.5431034482758621,
    ),
    _row(
        "GPT-4o Stage3 step500", None, 0.6571428571428571, 0.6436436436436437, 0.6044021415823915,
        0.9982153480071386, 0.0, 0.7433669875557642, 0.5415590514205213, 0.5862068965517241,
    ),
    _row(
        "GPT-4o Stage3 step1000", None, 0.6675324675324675, 0.6396396396396397, 0.6228435455086259,
        0.9940511600237953, 0.0, 0.737614463489082, 0.5586992251702277, 0.603448275862069,
    ),
    _row(
        "GPT-4o Stage3 step1500", "r1", 0.6519480519480519, 0.6386386386386387, 0.6136228435455087,
        0.9848304580606781, 0.0, 0.7500586992251702, 0.5718478516083587, 0.5431034482758621,
    ),
    _row(
        "LoRA-SFT4000 control", None, 0.5298701298701298, 0.5655655655655656, 0.6311719214753123,
        1.0, 0.0, 0.5996712843390467, 0.5759567973702747, 0.5603448275862069,
    ),
)  # fmt: skip
RATIO_ABLATION = (  # SFT / rule-RL samples out of 1,000
    _row(
        "250 SFT + 750 rule-RL", None, 0.5038961038961038, 0.4724724724724725, 0.5776323616894705,
        0.9994051160023796, 0.0, None, None, 0.5431034482758621,
    ),
    _row(
        "500 SFT + 500 rule-RL", None, 0.5194805194805194, 0.5175175175175175, 0.5719809637120762,
        0.9997025580011898, 0.0, None, None, 0.45689655172413796,
    ),
    _row(
        "750 SFT + 250 rule-RL", None, 0.509090909090909, 0.4974974974974975, 0.5562165377751338,
        0.9994051160023796, None, None, None, 0.4396551724137931,
    ),
)  # fmt: skip
ROWS = CORE + RATIO_ABLATION

# Their image-cluster bootstrap on test999 (999 QA, 707 images, 251 with several QA, at most 3 per image).
CLUSTER_CI_TEST = {  # model → (correct, questions, 95 % CI)
    "Current L-r16 SFT3000 step80": (566, 999, (0.5352804833030441, 0.5975975975975976)),
    "Full rule-RL n8 step1000": (634, 999, (0.6048632218844985, 0.6646766169154229)),
    "GPT-4o Stage3 step1500": (638, 999, (0.6089542409532882, 0.6676647455839072)),
}
PAIRED_TEST = {  # (A, B) → (accuracy A − B, 95 % CI, two-sided bootstrap p)
    ("GPT-4o Stage3 step1500", "Current L-r16 SFT3000 step80"): (
        0.07207207207207211, (0.04240631163708086, 0.10233089010773629), 0.0,
    ),
    ("GPT-4o Stage3 step1500", "Full rule-RL n8 step1000"): (
        0.004004004004004025, (-0.018182738314317267, 0.026052104208416752), 0.758,
    ),
}  # fmt: skip
STATISTICS = {"seed": 20260814, "replicates": 10_000, "questions": 999, "images": 707}


def model_of(stage: str) -> str | None:
    """Their model that our ``stage`` (at 7B) stands beside."""
    return next((row.model for row in CORE if row.stage == stage), None)


def percent(value: float | None) -> str | None:
    """A fraction of theirs as the report prints it (``0.6386386`` → ``"63.86"``)."""
    return None if value is None else f"{value * 100:.2f}"
