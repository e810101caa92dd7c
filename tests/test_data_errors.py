"""Every kind of bad input gets an error naming the file and item; --skip-invalid writes rejects instead."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tools.cli import main
from tools.data.errors import DataError
from tools.data.omnimedvqa import convert_omnimedvqa
from tools.data.pathmmu import convert_pathmmu

BAD = 3  # index of the item each mutation breaks
Data = dict
SIZES = (4, 4)


def write_png(path: Path, rgb: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (56, 56), rgb).save(path)


def good_pathmmu(root: Path) -> Data:
    """16 valid PubMed test items (own image each) and 2 EduContent val items."""
    items = {"PubMed": {"test": []}, "EduContent": {"val": []}}
    for n in range(18):
        write_png(root / "images" / f"{n:03d}.png", (n * 10, 100, 200 - n * 10))
        subset, split = ("PubMed", "test") if n < 16 else ("EduContent", "val")
        items[subset][split].append(
            {
                "No": n,
                "img": f"{n:03d}.png",
                "question": f"What is shown in picture {n}?",
                "options": ["A) Liver", "B) Lung", "C) Skin", "D) Bone"],
                "answer": "C) Skin",
                "explanation": "Keratinised squamous epithelium.",
            }
        )
    return items


def _bad(data: Data) -> dict:
    return data["PubMed"]["test"][BAD]


def _garbage_image(data: Data, root: Path) -> None:
    (root / "images" / "broken.png").write_bytes(b"not a png at all")
    _bad(data)["img"] = "broken.png"


def _duplicate_no(data: Data, root: Path) -> None:
    _bad(data)["No"] = 0


def _conflicting_repeat(data: Data, root: Path) -> None:
    data["PubMed"]["test"][BAD] = {**data["PubMed"]["test"][0], "No": BAD, "answer": "D) Bone"}


ITEM_CASES: dict[str, tuple[Callable[[Data, Path], None], str]] = {
    "missing image": (lambda d, r: _bad(d).update(img="gone.png"), r"image .*gone.png does not exist"),
    "unreadable image": (_garbage_image, r"image .*broken.png is not a readable image"),
    "answer not among options": (
        lambda d, r: _bad(d).update(answer="C) Brain"),
        r"answer 'C\) Brain' is not among the options",
    ),
    "answer letter and text disagree": (
        lambda d, r: _bad(d).update(answer="A) Skin"),
        r"answer 'A\) Skin' is not among the options",
    ),
    "unlettered option": (
        lambda d, r: _bad(d).update(options=["A) Liver", "Lung", "C) Skin"]),
        r"option 2 'Lung' is not lettered like 'B\) text'",
    ),
    "duplicated option letter": (
        lambda d, r: _bad(d).update(options=["A) Liver", "A) Lung", "C) Skin"]),
        r"option 'A\) Lung': letter A is duplicated, expected B",
    ),
    "duplicated option text": (
        lambda d, r: _bad(d).update(options=["A) Liver", "B) Skin", "C) skin "]),
        r"options 'B\) Skin' and 'C\) skin ' have the same text",
    ),
    "duplicate id": (
        _duplicate_no,
        r"duplicate id 'PubMed/test/0': PubMed/test\[0\] \(No=0\) has the same No",
    ),
    "conflicting repeat": (
        _conflicting_repeat,
        r"repeats PubMed/test/0 but answers 'D\) Bone' instead of 'C\) Skin'",
    ),
    "missing field": (lambda d, r: _bad(d).pop("question"), r"missing field 'question'"),
    "wrong field type": (
        lambda d, r: _bad(d).update(options="A) Liver"),
        r"field 'options' must be list, got str",
    ),
    "empty field": (lambda d, r: _bad(d).update(img=" "), r"field 'img' is empty"),
    "item not an object": (
        lambda d, r: d["PubMed"]["test"].__setitem__(BAD, ["not", "an", "item"]),
        r"PubMed/test\[3\]: expected an object, got list",
    ),
}


@pytest.mark.parametrize("case", list(ITEM_CASES))
def test_bad_pathmmu_item(case: str, tmp_path: Path, capsys) -> None:
    mutate, message = ITEM_CASES[case]
    root = tmp_path / "src"
    data = good_pathmmu(root)
    mutate(data, root)
    (root / "data.json").write_text(json.dumps(data))
    data_json = str(root / "data.json")

    with pytest.raises(DataError, match=message) as error:
        convert_pathmmu(root, tmp_path / "out", sizes=SIZES)
    assert str(error.value).startswith(f"{data_json}: item PubMed/test[{BAD}]")
    assert "--skip-invalid" in str(error.value)
    assert not (tmp_path / "out" / "manifest.json").exists()

    manifest = convert_pathmmu(root, tmp_path / "out", sizes=SIZES, skip_invalid=True)
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 1 and rejects[0]["file"] == data_json
    assert rejects[0]["item"].startswith(f"PubMed/test[{BAD}]")
    assert manifest["stats"]["rejected"] == 1 and manifest["stats"]["kept"] == 17
    assert sum(manifest["counts"].values()) == 17
    assert f"rejected 1 invalid item(s): see {tmp_path / 'out' / 'rejects.jsonl'}" in capsys.readouterr().err


def test_rejects_file_is_removed_when_the_input_is_fixed(tmp_path: Path) -> None:
    root = tmp_path / "src"
    data = good_pathmmu(root)
    _bad(data)["img"] = "gone.png"
    (root / "data.json").write_text(json.dumps(data))
    convert_pathmmu(root, tmp_path / "out", sizes=SIZES, skip_invalid=True)
    assert (tmp_path / "out" / "rejects.jsonl").exists()
    (root / "data.json").write_text(json.dumps(good_pathmmu(root)))
    convert_pathmmu(root, tmp_path / "out", sizes=SIZES, skip_invalid=True)
    assert not (tmp_path / "out" / "rejects.jsonl").exists()


FILE_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "no data.json": (
        lambda r: (r / "data.json").unlink(),
        r"data.json not found: expected PathMMU's data.json",
    ),
    "invalid JSON": (lambda r: (r / "data.json").write_text("{oops"), r"data.json: not valid JSON"),
    "top level is a list": (
        lambda r: (r / "data.json").write_text("[]"),
        r"data.json: the top level must be an object \{subset: \{split: \[items\]\}\}, got list",
    ),
    "subset is a list": (
        lambda r: (r / "data.json").write_text(json.dumps({"PubMed": [], "EduContent": {}})),
        r"data.json: data\['PubMed'\] must be an object \{split: \[items\]\}, got list",
    ),
    "split is an object": (
        lambda r: (r / "data.json").write_text(json.dumps({"PubMed": {"test": {}}, "EduContent": {}})),
        r"data.json: data\['PubMed'\]\['test'\] must be a list of items, got dict",
    ),
    "subset missing": (
        lambda r: (r / "data.json").write_text(json.dumps({"PubMed": {}, "Atlas": {}})),
        r"data.json: subset 'EduContent' not found \(it has PubMed, Atlas\)",
    ),
    "images folder missing": (
        lambda r: (r / "images").rename(r / "pictures"),
        r"images not found: unzip PathMMU's images.zip beside data.json",
    ),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_bad_pathmmu_file(case: str, tmp_path: Path) -> None:
    mutate, message = FILE_CASES[case]
    root = tmp_path / "src"
    (root / "data.json").parent.mkdir(parents=True)
    (root / "data.json").write_text(json.dumps(good_pathmmu(root)))
    mutate(root)
    for skip_invalid in (False, True):  # file-level problems are never skipped
        with pytest.raises(DataError, match=message):
            convert_pathmmu(root, tmp_path / "out", sizes=SIZES, skip_invalid=skip_invalid)


def test_bad_input_through_the_cli(tmp_path: Path, capsys) -> None:
    root = tmp_path / "src"
    data = good_pathmmu(root)
    _bad(data)["answer"] = "E) Heart"
    (root / "data.json").write_text(json.dumps(data))
    args = ["data", "pathmmu", "--root", str(root), "--out", str(tmp_path / "out"), "--sizes", "4,4"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {root / 'data.json'}: item PubMed/test[3] (No=3): answer 'E) Heart' is not among" in err
    assert main([*args, "--skip-invalid"]) == 0
    assert "rejected 1 invalid item(s)" in capsys.readouterr().err


def good_omnimedvqa(root: Path) -> list[dict]:
    rows = []
    for n in range(6):
        write_png(root / "Images" / "ISIC2020" / f"{n}.png", (n * 30, 0, 0))
        rows.append(
            {
                "question_id": f"isic_{n}",
                "question": "Is this lesion malignant?",
                "gt_answer": "Malignant",
                "option_A": "Benign",
                "option_B": "Malignant",
                "image_path": f"Images/ISIC2020/{n}.png",
                "modality_type": "Dermoscopy",
            }
        )
    return rows


def _write_omni(root: Path, rows: object) -> Path:
    path = root / "QA_information" / "Open-access" / "ISIC2020.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


OMNI_ITEM_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "answer matches no option": (
        lambda row: row.update(gt_answer="Melanoma"),
        r"answer 'Melanoma' matches none of the options \['A\) Benign', 'B\) Malignant'\]",
    ),
    "missing image": (
        lambda row: row.update(image_path="Images/ISIC2020/gone.png"),
        r"gone.png does not exist",
    ),
    "one option only": (lambda row: row.pop("option_B"), r"expected 2 to 26 options \(A-Z\), got 1"),
    "duplicated option text": (
        lambda row: row.update(option_C="malignant"),
        r"options 'B\) Malignant' and 'C\) malignant' have the same text",
    ),
    "duplicate question_id": (
        lambda row: row.update(question_id="isic_0"),
        r"duplicate question_id 'isic_0': \[0\] \(question_id='isic_0'\) has it too",
    ),
    "missing field": (lambda row: row.pop("gt_answer"), r"missing field 'gt_answer'"),
}


@pytest.mark.parametrize("case", list(OMNI_ITEM_CASES))
def test_bad_omnimedvqa_item(case: str, tmp_path: Path) -> None:
    mutate, message = OMNI_ITEM_CASES[case]
    rows = good_omnimedvqa(tmp_path)
    mutate(rows[BAD])
    path = _write_omni(tmp_path, rows)
    with pytest.raises(DataError, match=message) as error:
        convert_omnimedvqa(tmp_path, tmp_path / "out", subsets=("ISIC2020",))
    assert str(error.value).startswith(f"{path}: item [{BAD}] (question_id=")
    manifest = convert_omnimedvqa(tmp_path, tmp_path / "out", subsets=("ISIC2020",), skip_invalid=True)
    assert manifest["counts"] == {"isic2020": 5} and manifest["stats"]["rejected"] == 1
    assert len((tmp_path / "out" / "rejects.jsonl").read_text().splitlines()) == 1


def test_bad_omnimedvqa_files(tmp_path: Path) -> None:
    (tmp_path / "QA_information" / "Open-access").mkdir(parents=True)
    with pytest.raises(
        DataError, match=r"OmniMedVQA subset 'ISIC2020' not found: expected .*Open-access/ISIC2020"
    ):
        convert_omnimedvqa(tmp_path, tmp_path / "out", subsets=("ISIC2020",))
    _write_omni(tmp_path, {"items": []})
    with pytest.raises(DataError, match=r"ISIC2020.json: the top level must be a list of items, got dict"):
        convert_omnimedvqa(tmp_path, tmp_path / "out", subsets=("ISIC2020",), skip_invalid=True)
