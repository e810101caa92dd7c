"""The report's "reasoning quality (judged)" table: ``pathvlm judge-eval`` scores per model, paired tests.

Per evaluated model on the in-domain test split: mean integrity, knowledge and process score (the judge's
rubric, format failures 0) with 95 % bootstrap CIs, next to Table 2's average output tokens (ours and the
paper's); then Wilcoxon signed-rank tests on per-item process scores for R1 vs β and β vs α per size, on
the ids both models have. A model evaluated but not judged says ``not judged``. Judged files that do not
match their evaluation (other ids, corrupt lines) stop the report with the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.evaluation.markdown import markdown_table
from tools.evaluation.paper import TABLE2, model_label

IN_DOMAIN = "test"
PAIRS = (("r1", "beta"), ("beta", "alpha"))
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


def read_judged(eval_dir: Path, ids_sha256: str) -> dict[str, float] | None:
    """Per-item process scores of a judged folder, checked against its evaluation; None if not judged."""
    from tools.evaluation.eval_files import EvalFileError, read_json
    from tools.evaluation.eval_files import ids_sha256 as hash_ids
    from tools.evaluation.judge_eval import JUDGED_FILE, JUDGED_SUMMARY_FILE

    summary_path, path = eval_dir / JUDGED_SUMMARY_FILE, eval_dir / JUDGED_FILE
    if not summary_path.exists():
        return None
    judged = read_json(summary_path)
    if judged.get("ids_sha256") != ids_sha256:
        raise EvalFileError(f"{summary_path}: judged other items than summary.json covers; rerun judge-eval")
    if not path.is_file():
        raise EvalFileError(f"{path}: missing")
    scores: dict[str, float] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            id_, process = row["id"], float(row["process"])
        except (ValueError, KeyError, TypeError) as error:
            raise EvalFileError(f"{path}:{line_no}: not a judged record ({error})") from error
        if id_ in scores:
            raise EvalFileError(f"{path}:{line_no}: duplicate id {id_!r}")
        scores[id_] = process
    if hash_ids(scores) != ids_sha256:
        raise EvalFileError(f"{path}: ids differ from judged_summary.json's")
    return scores


def build(results: dict) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The table rows (one per model evaluated on the test split) and the paired tests."""
    from tools.evaluation.eval_files import EvalFileError, read_json
    from tools.evaluation.judge_eval import JUDGED_SUMMARY_FILE
    from tools.evaluation.stats import wilcoxon_signed_rank

    paper_tokens = {(p.size, p.stage): p.value for p in TABLE2}
    rows, scores, problems = [], {}, []
    for (size, stage, dataset), result in results.items():
        if dataset != IN_DOMAIN:
            continue
        eval_dir = result.items_path.parent
        try:
            judged_scores = read_judged(eval_dir, result.summary["ids_sha256"])
        except EvalFileError as error:
            problems.append(str(error))
            continue
        row: dict[str, Any] = {
            "model": model_label(size, stage),
            "size": size,
            "stage": stage,
            "n": result.summary["n"],
            "avg_output_tokens": result.summary["avg_output_tokens"],
            "paper_output_tokens": paper_tokens.get((size, stage)),
        }
        if judged_scores is not None:
            judged = read_json(eval_dir / JUDGED_SUMMARY_FILE)
            scores[(size, stage)] = judged_scores
            row |= {
                "process": judged["process"],
                "process_ci_low": judged["process_ci"][0],
                "process_ci_high": judged["process_ci"][1],
                "integrity": judged["integrity"],
                "knowledge": judged["knowledge"],
                "judge": judged["judge"]["model"],
            }
        rows.append(row)
    if problems:
        raise SystemExit("judged evaluation files that cannot be trusted:\n  " + "\n  ".join(problems))
    tests = []
    for size in sorted({size for size, _ in scores}):
        for stage_a, stage_b in PAIRS:
            a, b = scores.get((size, stage_a)), scores.get((size, stage_b))
            if a is None or b is None:
                continue
            shared = sorted(set(a) & set(b))
            test = wilcoxon_signed_rank([a[i] for i in shared], [b[i] for i in shared])
            tests.append(
                {"size": size, "a": model_label(size, stage_a), "b": model_label(size, stage_b)}
                | {
                    "n": test.n,
                    "nonzero": test.nonzero,
                    "mean_diff": test.mean_diff,
                    "statistic": test.statistic,
                    "p_value": test.p_value,
                }
            )
    return rows, tests


def _f(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown(rows: Sequence[dict[str, Any]], tests: Sequence[dict[str, Any]]) -> list[str]:
    header = ["Model", "n", "Process (95% CI)", "Integrity", "Knowledge", "Output tokens", "Paper tokens"]
    body: list[list[str]] = []
    for row in rows:
        process = (
            f"{_f(row['process'])} ({_f(row['process_ci_low'])}–{_f(row['process_ci_high'])})"
            if "process" in row
            else NOT_JUDGED
        )
        cells = [
            row["model"],
            str(row["n"]),
            process,
            _f(row.get("integrity")),
            _f(row.get("knowledge")),
            _f(row["avg_output_tokens"], 2),
            row["paper_output_tokens"] or "—",
        ]
        body.append(cells)
    test_header = ["Size", "A", "B", "n shared", "pairs differing", "mean A − B", "W", "p (Wilcoxon)"]
    test_body: list[list[str]] = []
    for test in tests:
        cells = [test["size"], test["a"], test["b"], str(test["n"]), str(test["nonzero"])]
        cells += [_f(test["mean_diff"]), _f(test["statistic"], 1), f"{test['p_value']:.4g}"]
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


def sections(results: dict, out: Path) -> list[str]:
    """The report's markdown sections; writes ``reasoning_judged.csv`` and ``reasoning_tests.csv``."""
    from tools.evaluation.report import write_csv

    rows, tests = build(results)
    write_csv(out / "reasoning_judged.csv", rows, ROW_COLUMNS)
    write_csv(out / "reasoning_tests.csv", tests, TEST_COLUMNS)
    return markdown(rows, tests)
