"""The authors' extra benchmarks: their two scorings, parse and cap rates, PathVQA A/B and MMMU conversion."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tools.cli import main
from tools.evaluation.eval_all import eval_datasets
from tools.evaluation.score import cap_rate
from tools.evaluation.scorings import authors_scorings

OPTIONS = ["A) Adenocarcinoma", "B) Lymphoma", "C) Normal tissue", "D) Melanoma"]


@pytest.mark.parametrize(
    ("response", "official", "aligned"),
    [
        ("<think>x</think><answer>B) Lymphoma</answer>", True, True),
        ("<think>Not melanoma, not adenocarcinoma.</think><answer>B</answer>", False, True),  # letter only
        ("Lymphoma", True, True),  # no tag: the whole response
        ("The answer is (B)", False, True),  # answer marker, parenthesised letter
        ("<answer>lymphoma</answer>", True, True),  # the most similar option text
        ("<answer>a lymphoma</answer>", True, False),  # 'a ' reads as letter A, as in their regex
        ("", False, False),
    ],
)
def test_authors_scorings_follow_their_contract(response: str, official: bool, aligned: bool) -> None:
    result = authors_scorings(response, OPTIONS, OPTIONS[1])
    assert (result["official_correct"], result["contract_aligned_correct"]) == (official, aligned)


def test_cap_rate_counts_responses_at_the_limit() -> None:
    records = [{"output_tokens": n} for n in (3, 192, 200, 10)]
    assert cap_rate(records, 192) == 0.5
    assert cap_rate(records, None) is None


def _png(rgb: tuple[int, int, int], size: tuple[int, int] = (20, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pathvqa_closed_questions_become_a_b(tmp_path: Path) -> None:
    rows = [
        ("is this necrosis?", "yes"),
        ("what is shown?", "granuloma"),
        ("is it benign?", " No."),
        ("a?", "Yes"),
    ]
    table = pa.table(
        {
            "image": [{"bytes": _png((i * 40, 0, 0)), "path": f"{i}.jpg"} for i in range(len(rows))],
            "question": [q for q, _ in rows],
            "answer": [a for _, a in rows],
        }
    )
    (tmp_path / "src" / "data").mkdir(parents=True)
    pq.write_table(table, tmp_path / "src" / "data" / "test-00000-of-00001.parquet")
    data = tmp_path / "data"
    assert main(["data", "pathvqa", "--root", str(tmp_path / "src"), "--out", str(data / "pathvqa")]) == 0
    items = [json.loads(line) for line in (data / "pathvqa" / "eval" / "pathvqa_closed.jsonl").open()]
    assert [(i["question"], i["answer"]) for i in items] == [
        ("is this necrosis?", "A) Yes"),
        ("is it benign?", "B) No"),
        ("a?", "A) Yes"),
    ]
    assert all(i["options"] == ["A) Yes", "B) No"] and Path(i["image"]).is_file() for i in items)
    assert eval_datasets(data) == [data / "pathvqa" / "eval" / "pathvqa_closed.jsonl"]


def test_mmmu_keeps_non_medical_multiple_choice(tmp_path: Path) -> None:
    def write(subject: str, rows: list[dict]) -> None:
        (tmp_path / "src" / subject).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "src" / subject / "dev-00000-of-00001.parquet")

    def row(id_: str, kind: str, images: int) -> dict:
        cells = {f"image_{n}": {"bytes": _png((n * 50, 9, 9)), "path": "x.png"} for n in range(1, images + 1)}
        cells.update({f"image_{n}": None for n in range(images + 1, 8)})
        return {
            "id": id_,
            "question": f"<image 1> {id_}?",
            "options": "['1', '2', '3']",
            "answer": "B",
            "question_type": kind,
            **cells,
        }

    write("Art", [row("dev_Art_1", "multiple-choice", 1), row("dev_Art_2", "open", 1)])
    write("Physics", [row("dev_Physics_1", "multiple-choice", 2)])
    write("Clinical_Medicine", [row("dev_Clinical_Medicine_1", "multiple-choice", 1)])
    out = tmp_path / "mmmu"
    assert main(["data", "mmmu", "--root", str(tmp_path / "src"), "--out", str(out)]) == 0
    items = [json.loads(line) for line in (out / "eval" / "mmmu_nonmedical_dev.jsonl").open()]
    assert [(i["id"], i["subset"], i["answer"]) for i in items] == [
        ("mmmu/dev_Art_1", "Art", "B) 2"),
        ("mmmu/dev_Physics_1", "Physics", "B) 2"),
    ]
    assert Image.open(items[1]["image"]).size == (40, 10)  # two images side by side
    assert json.loads((out / "manifest.json").read_text())["counts"]["images_side_by_side"] == 1
