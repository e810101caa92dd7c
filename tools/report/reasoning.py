"""The report's "reasoning quality (judged)" table: ``pathvlm judge-eval`` scores per model, paired tests.

Per evaluated model on the in-domain test split: mean integrity, knowledge and process score (the judge's
rubric, format failures 0) with 95 % bootstrap CIs, next to Table 2's average output tokens (ours and the
paper's); then Wilcoxon signed-rank tests on per-item process scores for R1 vs β and β vs α per size, on
the ids both models have (each GRPO stage of the chain against the stage it started from,
``tools.report.stages``). A model evaluated but not judged says ``not judged``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tools.evaluation.stats import wilcoxon_signed_rank
from tools.recipe.run import IN_DOMAIN
from tools.report.load import Results
from tools.report.markdown import markdown_table, num
from tools.report.paper import TABLE2, model_label
from tools.report.stages import chain_steps

NOT_JUDGED = "not judged"
ROW_COLUMNS = (
    "model",
    "size",
    "stage",
    "n",
    "process",
    "process_ci_low",
    "process_ci_high",
    "integrity",
    "knowledge",
    "avg_output_tokens",
    "paper_output_tokens",
    "judge",
)
TEST_COLUMNS = ("size", "a", "b", "n", "nonzero", "mean_diff", "statistic", "p_value")


def build(results: Results) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The table rows (one per model evaluated on the test split) and the paired tests."""
    paper_tokens = {(p.size, p.stage): p.value for p in TABLE2}
    rows = []
    for (size, stage, dataset), result in results.items():
        if dataset != IN_DOMAIN:
            continue
        row: dict[str, Any] = {
            "model": model_label(size, stage),
            "size": size,
            "stage": stage,
            "n": result.summary["n"],
            "avg_output_tokens": result.summary["avg_output_tokens"],
            "paper_output_tokens": paper_tokens.get((size, stage)),
        }
        judged = result.judged_summary
        if judged is not None:
            row |= {
                "process": judged["process"],
                "process_ci_low": judged["process_ci"][0],
                "process_ci_high": judged["process_ci"][1],
                "integrity": judged["integrity"],
                "knowledge": judged["knowledge"],
                "judge": judged["judge"]["model"],
            }
        rows.append(row)
    scores = {
        (s, st): r.judged for (s, st, d), r in results.items() if d == IN_DOMAIN and r.judged is not None
    }
    tests = []
    for size in sorted({size for size, _ in scores}):
        for stage_a, stage_b in chain_steps():
            a, b = scores.get((size, stage_a)), scores.get((size, stage_b))
            if a is None or b is None:
                continue
            shared = sorted(set(a) & set(b))
            test = wilcoxon_signed_rank([a[i] for i in shared], [b[i] for i in shared])
            row = {"size": size, "a": model_label(size, stage_a), "b": model_label(size, stage_b)}
            tests.append(row | asdict(test))  # n, nonzero, mean_diff, statistic, p_value
    return rows, tests


def markdown(rows: Sequence[dict[str, Any]], tests: Sequence[dict[str, Any]]) -> list[str]:
    """The section: the judged table and the paired tests."""
    header = ["Model", "n", "Process (95% CI)", "Integrity", "Knowledge", "Output tokens", "Paper tokens"]
    body: list[list[str]] = []
    for row in rows:
        process = (
            f"{num(row['process'], 3)} ({num(row['process_ci_low'], 3)}–{num(row['process_ci_high'], 3)})"
            if "process" in row
            else NOT_JUDGED
        )
        cells = [
            row["model"],
            str(row["n"]),
            process,
            num(row.get("integrity"), 3),
            num(row.get("knowledge"), 3),
            num(row["avg_output_tokens"], 2),
            row["paper_output_tokens"] or "—",
        ]
        body.append(cells)
    test_header = ["Size", "A", "B", "n shared", "pairs differing", "mean A − B", "W", "p (Wilcoxon)"]
    test_body: list[list[str]] = []
    for test in tests:
        cells = [test["size"], test["a"], test["b"], str(test["n"]), str(test["nonzero"])]
        cells += [num(test["mean_diff"], 3), num(test["statistic"], 1), f"{test['p_value']:.4g}"]
        test_body.append(cells)
    judges = sorted({row["judge"] for row in rows if row.get("judge")})
    return [
        "## Reasoning quality (judged)",
        "Judge rubric scores of every test output (`pathvlm judge-eval`; judge: "
        + (", ".join(judges) or "none yet")
        + "); format failures score 0, as in training; process = mean of integrity and knowledge. "
        "Output tokens are Table 2's.",
        markdown_table(header, body),
        "Paired Wilcoxon signed-rank tests on per-item process scores (ties dropped):",
        markdown_table(test_header, test_body) if tests else "(no judged pair yet)",
    ]
