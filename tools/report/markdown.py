"""The report's markdown: one table format for every section, and the cells the sections share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.report.paper import OOD_SUBSETS

MISSING = "missing"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table: the header, its rule, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(map(str, row)) + " |" for row in rows)])


def num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def interval_cell(low: Any, high: Any) -> str:
    """``low–high`` for numbers, the reason for none otherwise (``NO_IMAGES``), empty when absent."""
    if isinstance(low, float | int) and isinstance(high, float | int):
        return f"{num(low)}–{num(high)}"
    return "" if low is None else str(low)


def table_markdown(
    rows: Sequence[dict[str, Any]],
    with_dataset: bool = False,
    clusters: bool = True,
    reference: tuple[str, str] = ("paper", "Paper"),
    datasets: dict[str, str] = OOD_SUBSETS,
    extra: tuple[str, str] | None = None,
) -> str:
    """Rows as markdown; ``reference``: the rows' key of the reference number and its column name;
    ``clusters``: with the image-cluster CI column (accuracy tables); ``datasets``: display names;
    ``extra``: a last column (the rows' key, its name)."""
    key, name = reference
    header = (
        ["Model"]
        + (["Dataset"] if with_dataset else [])
        + ["n", "Ours (95% CI)"]
        + (["Image-cluster 95% CI"] if clusters else [])
        + [name, f"Δ (ours − {name.split()[0].lower()})"]
        + ([extra[1]] if extra else [])
    )
    body: list[list[str]] = []
    for row in rows:
        ours = (
            MISSING
            if row["ours"] is None
            else f"{num(row['ours'])} ({num(row['ci_low'])}–{num(row['ci_high'])})"
        )
        body.append(
            [
                row["model"],
                *([datasets.get(row["dataset"], row["dataset"])] if with_dataset else []),
                "" if row["n"] is None else str(row["n"]),
                ours,
                *([interval_cell(row.get("cluster_ci_low"), row.get("cluster_ci_high"))] if clusters else []),
                row[key] or "—",
                num(row["diff"], sign=True),
                *([row.get(extra[0]) or ""] if extra else []),
            ]
        )
    return markdown_table(header, body)


def paired_cluster_cells(row: dict[str, Any]) -> list[str]:
    """A row's paired image-cluster bootstrap (``tools.report.paired``) as two cells: A − B (95 % CI), p."""
    diff = "" if row["diff"] is None else f"{num(row['diff'], sign=True)} "
    p_value = row["cluster_p"]
    return [
        diff + f"({interval_cell(row['cluster_low'], row['cluster_high'])})",
        f"{p_value:.4g}" if isinstance(p_value, float) else str(p_value),
    ]


def comparisons_markdown(rows: Sequence[dict[str, Any]], extra: tuple[str, str] | None = None) -> str:
    """The paired comparisons table; ``extra``: a further column (the rows' key, its name)."""
    header = [
        "Size",
        "Dataset",
        "A",
        "B",
        "n shared",
        "A acc %",
        "B acc %",
        "A only",
        "B only",
        "p (exact McNemar)",
        "A − B (image-cluster 95% CI)",
        "p (image-cluster bootstrap)",
        *([extra[1]] if extra else []),
    ]
    body: list[list[str]] = []
    for row in rows:
        cells = [row["size"], row["dataset"], row["a"], row["b"]]
        if row["n"] == MISSING:
            body.append([*cells, MISSING] + [""] * (len(header) - 5))
            continue
        cells += [str(row["n"]), num(row["accuracy_a"]), num(row["accuracy_b"]), str(row["only_a"])]
        cells += [str(row["only_b"]), f"{row['p_value']:.4g}", *paired_cluster_cells(row)]
        body.append(cells + ([row.get(extra[0]) or "—"] if extra else []))
    return markdown_table(header, body)
