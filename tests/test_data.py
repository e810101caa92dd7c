"""Data conversion on generated fixtures in the real PathMMU and OmniMedVQA schemas (CPU only, seconds)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tools.cli import main
from tools.common.prompt import build_prompt, with_image_token
from tools.data.check import check_output
from tools.data.errors import DataError
from tools.data.items import normalise
from tools.data.omnimedvqa import convert_omnimedvqa
from tools.data.pathmmu import convert_pathmmu
from tools.dev.synth import write_synthetic_omnimedvqa, write_synthetic_pathmmu

SPLITS = ("sft", "rl", "test")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_png(path: Path, rgb: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (56, 56), rgb).save(path)


def pathmmu_item(no: int, img: str, question: str, explanation: str = "because") -> dict:
    return {
        "No": no,
        "img": img,
        "question": question,
        "options": ["A) Liver", "B) Lung", "C) Skin"],
        "answer": "B) Lung",
        "explanation": explanation,
    }


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_pathmmu(tmp_path_factory.mktemp("synth") / "pathmmu", 120, seed=0)


@pytest.fixture(scope="module")
def converted(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "pathmmu"
    convert_pathmmu(synth_root, out, seed=1, sizes=(60, 20))
    return out


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh (source, output) pair that a test may tamper with."""
    root = write_synthetic_pathmmu(tmp_path / "src", 30, seed=3)
    out = tmp_path / "out"
    convert_pathmmu(root, out, seed=0, sizes=(10, 5))
    return root, out


def test_synthetic_pathmmu_has_the_real_schema(synth_root: Path) -> None:
    data = json.loads((synth_root / "data.json").read_text())
    assert set(data) == {"PubMed", "EduContent"}
    for splits in data.values():
        assert set(splits) == {"val", "test", "test_tiny"}
        assert all(item in splits["test"] for item in splits["test_tiny"])
        for item in splits["val"] + splits["test"]:
            assert {"No", "img", "question", "options", "answer"} <= item.keys()
            assert item["answer"] in item["options"]
            with Image.open(synth_root / "images" / item["img"]) as image:
                assert image.size == (56, 56)
    unique = sum(len(s["val"]) + len(s["test"]) for s in data.values())
    assert unique == 120


def test_synthetic_pathmmu_is_learnable(synth_root: Path) -> None:
    """The answer follows from the image's dominant colour alone."""
    from tools.dev.synth import PALETTE

    data = json.loads((synth_root / "data.json").read_text())
    for item in data["PubMed"]["test"][:40]:
        with Image.open(synth_root / "images" / item["img"]) as image:
            pixels = list(image.convert("RGB").getdata())
        mean = [sum(p[c] for p in pixels) / len(pixels) for c in range(3)]
        nearest = min(
            PALETTE, key=lambda entry: sum((m - v) ** 2 for m, v in zip(mean, entry[1], strict=True))
        )
        assert item["answer"].split(") ", 1)[1] == nearest[2]


def test_counts_and_deduplication(converted: Path, synth_root: Path) -> None:
    data = json.loads((synth_root / "data.json").read_text())
    manifest = json.loads((converted / "manifest.json").read_text())
    tiny = sum(len(s["test_tiny"]) for s in data.values())
    assert manifest["counts"] == {"sft": 60, "rl": 20, "test": 40}
    assert manifest["stats"]["read"] == 120 + tiny
    assert manifest["stats"]["duplicates"] == tiny
    assert manifest["stats"]["kept"] == 120 and manifest["stats"]["rejected"] == 0
    assert manifest["seed"] == 1 and len(manifest["source_sha256"]) == 64
    assert not (converted / "rejects.jsonl").exists()
    ids = [e["id"] for split in SPLITS for e in manifest["splits"][split]]
    assert len(ids) == len(set(ids)) == 120
    assert not any("test_tiny" in i for i in ids)


def test_splits_are_image_and_question_disjoint(converted: Path) -> None:
    splits = json.loads((converted / "manifest.json").read_text())["splits"]
    for key in ("image", "sha256"):
        sets = [{e[key] for e in splits[s]} for s in SPLITS]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]), key
    questions = [{normalise(e["question"]) for e in splits[s]} for s in SPLITS]
    assert not (questions[0] & questions[1] or questions[0] & questions[2] or questions[1] & questions[2])
    assert check_output(converted) == []


def test_every_output_uses_the_same_items_and_prompt(converted: Path) -> None:
    manifest = json.loads((converted / "manifest.json").read_text())
    info = json.loads((converted / "llamafactory" / "dataset_info.json").read_text())
    assert sorted(info) == ["pathmmu_rl", "pathmmu_sft", "pathmmu_test"]
    assert info["pathmmu_sft"] == {
        "file_name": "sft.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    }
    evals = read_jsonl(converted / "eval" / "test.jsonl")
    assert [row["id"] for row in evals] == [e["id"] for e in manifest["splits"]["test"]]
    easyr1 = read_jsonl(converted / "easyr1" / "test.jsonl")
    sharegpt = json.loads((converted / "llamafactory" / "test.json").read_text())
    assert len(easyr1) == len(sharegpt) == len(evals) == 40
    for row, r1, lf in zip(evals, easyr1, sharegpt, strict=True):
        prompt = with_image_token(build_prompt(row["question"], row["options"]))
        image = Path(row["image"])
        assert image.is_absolute() and image.is_file()
        assert set(row) == {"id", "subset", "image", "question", "options", "answer"}
        assert row["answer"] in row["options"] and row["subset"] in {"PubMed", "EduContent"}
        assert r1["problem"] == lf["messages"][0]["content"] == prompt
        assert prompt.count("<image>") == 1 == len(lf["images"]) == len(r1["images"])
        assert r1["images"] == lf["images"] == [row["image"]]
        answer = json.loads(r1["answer"])
        assert answer["ground_truth"] == row["answer"] and answer["question"] == row["question"]
        assert answer["image"] == row["image"] and answer["id"] == row["id"]
        assert lf["messages"][1]["role"] == "assistant"
        assert lf["messages"][1]["content"].startswith("<think>")
        assert lf["messages"][1]["content"].endswith(f"</think><answer>{row['answer']}</answer>")
    assert len(read_jsonl(converted / "easyr1" / "rl.jsonl")) == 20
    assert len(json.loads((converted / "llamafactory" / "sft.json").read_text())) == 60


def test_same_seed_gives_identical_bytes(synth_root: Path, converted: Path, tmp_path: Path) -> None:
    convert_pathmmu(synth_root, tmp_path / "again", seed=1, sizes=(60, 20))
    for name in ("manifest.json", "llamafactory/sft.json", "easyr1/rl.jsonl", "eval/test.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (converted / name).read_bytes(), name
    other = convert_pathmmu(synth_root, tmp_path / "other", seed=2, sizes=(60, 20))
    assert other["splits"]["test"] != json.loads((converted / "manifest.json").read_text())["splits"]["test"]


def test_shared_images_and_questions_stay_in_one_split(tmp_path: Path) -> None:
    root = tmp_path / "src"
    items = []
    for n in range(40):
        write_png(root / "images" / f"img{n}.png", (n * 6, 255 - n * 6, n))
        items.append(pathmmu_item(n, f"img{n}.png", f"Question number {n}?"))
    items.append(pathmmu_item(40, "img0.png", "Another question on image 0?"))  # same path
    shutil.copy(root / "images" / "img1.png", root / "images" / "copy_of_1.png")
    items.append(pathmmu_item(41, "copy_of_1.png", "A question on a copy of image 1?"))  # same content
    write_png(root / "images" / "img42.png", (1, 2, 3))
    items.append(pathmmu_item(42, "img42.png", "  question NUMBER 2? "))  # same normalised question
    (root / "data.json").write_text(json.dumps({"PubMed": {"test": items}}))
    together = [("PubMed/test/0", "PubMed/test/40"), ("PubMed/test/1", "PubMed/test/41")]
    together.append(("PubMed/test/2", "PubMed/test/42"))
    for seed in range(8):
        manifest = convert_pathmmu(
            root, tmp_path / f"out{seed}", seed=seed, sizes=(20, 10), subsets=("PubMed",)
        )
        assert manifest["counts"] == {"sft": 20, "rl": 10, "test": 13}
        where = {e["id"]: split for split in SPLITS for e in manifest["splits"][split]}
        for a, b in together:
            assert where[a] == where[b], (seed, a, b)


def test_exact_sizes_impossible_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "src"
    items = []
    for n in range(5):  # five images with two questions each: only even split sizes are possible
        write_png(root / "images" / f"img{n}.png", (n * 40, 0, 0))
        items += [
            pathmmu_item(2 * n, f"img{n}.png", f"Q{2 * n}?"),
            pathmmu_item(2 * n + 1, f"img{n}.png", f"Q{2 * n + 1}?"),
        ]
    (root / "data.json").write_text(json.dumps({"PubMed": {"test": items}}))
    with pytest.raises(
        DataError,
        match=r"cannot make splits of exactly 3,2 items \(test the rest\): 10 items form 5 groups .*"
        r"group sizes 5×2\).*nearest feasible --sizes: 2,2; 4,2$",
    ):
        convert_pathmmu(root, tmp_path / "out", sizes=(3, 2), subsets=("PubMed",))
    assert convert_pathmmu(root, tmp_path / "out", sizes=(4, 2), subsets=("PubMed",))["counts"]["test"] == 4


def test_too_few_items(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"too few items: 120 kept, but sizes 100\+20 = 120"):
        convert_pathmmu(synth_root, tmp_path / "out", sizes=(100, 20))


def test_target_style_answer_and_missing_explanations(synth_root: Path, tmp_path: Path, capsys) -> None:
    data = json.loads((synth_root / "data.json").read_text())
    missing = sum(not item.get("explanation") for s in data.values() for item in s["val"] + s["test"])
    assert missing > 0
    manifest = convert_pathmmu(synth_root, tmp_path / "out", seed=1, sizes=(60, 20), target_style="answer")
    assert manifest["stats"]["no_explanation"] == missing
    assert f"{missing} of 120 items have no explanation" in capsys.readouterr().err
    rows = json.loads((tmp_path / "out" / "llamafactory" / "sft.json").read_text())
    assert all(row["messages"][1]["content"].startswith("<answer>") for row in rows)
    assert all(row["messages"][1]["content"].endswith("</answer>") for row in rows)
    with pytest.raises(DataError, match="unknown target style 'cot'"):
        convert_pathmmu(synth_root, tmp_path / "bad", target_style="cot")


def test_omnimedvqa_conversion(tmp_path: Path) -> None:
    root = write_synthetic_omnimedvqa(tmp_path / "omni", 12, seed=0)
    manifest = convert_omnimedvqa(root, tmp_path / "out")
    slugs = ["chest_ct_scan", "isic2020", "retinal_oct_c8", "diabetic_retinopathy"]
    assert manifest["counts"] == dict.fromkeys(slugs, 12)
    assert sorted(manifest["source_sha256"]) == sorted(
        f"QA_information/Open-access/{s}.json"
        for s in ("Chest CT Scan", "ISIC2020", "Retinal OCT-C8", "Diabetic Retinopathy")
    )
    sizes = set()
    for slug in slugs:
        rows = read_jsonl(tmp_path / "out" / "eval" / f"{slug}.jsonl")
        source = {
            r["question_id"]: r for r in json.loads(next(root.rglob(f"{rows[0]['subset']}.json")).read_text())
        }
        for row in rows:
            sizes.add(len(row["options"]))
            assert [o[:3] for o in row["options"]] == [
                f"{letter}) " for letter in "ABCD"[: len(row["options"])]
            ]
            assert row["answer"] in row["options"]
            assert row["answer"][3:] == source[row["id"]]["gt_answer"]
            assert Path(row["image"]).is_file()
    assert sizes == {2, 3, 4}
    assert check_output(tmp_path / "out") == []


def test_omnimedvqa_absent_middle_option(tmp_path: Path) -> None:
    write_png(tmp_path / "Images" / "x.png", (9, 9, 9))
    item = {"question_id": "q1", "question": "Which?", "image_path": "Images/x.png", "gt_answer": "Delta"}
    item |= {"option_A": "Alpha", "option_B": "Beta", "option_C": None, "option_D": "Delta"}
    (tmp_path / "QA_information" / "Restricted-access").mkdir(parents=True)
    (tmp_path / "QA_information" / "Restricted-access" / "ISIC2020.json").write_text(json.dumps([item]))
    convert_omnimedvqa(tmp_path, tmp_path / "out", subsets=("ISIC2020",))
    (row,) = read_jsonl(tmp_path / "out" / "eval" / "isic2020.jsonl")
    assert row["options"] == ["A) Alpha", "B) Beta", "C) Delta"] and row["answer"] == "C) Delta"


def _drop_rl_row(out: Path) -> None:
    rows = json.loads((out / "llamafactory" / "rl.json").read_text())
    (out / "llamafactory" / "rl.json").write_text(json.dumps(rows[1:]))


def _share_image(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["splits"]["rl"][0]["sha256"] = manifest["splits"]["sft"][0]["sha256"]
    (out / "manifest.json").write_text(json.dumps(manifest))


def _share_question(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["splits"]["test"][0]["question"] = manifest["splits"]["sft"][0]["question"].upper()
    (out / "manifest.json").write_text(json.dumps(manifest))


def _wrong_counts(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["counts"]["sft"] += 1
    (out / "manifest.json").write_text(json.dumps(manifest))


def _delete_image(out: Path) -> None:
    Path(read_jsonl(out / "eval" / "test.jsonl")[0]["image"]).unlink()


def _drop_image_token(out: Path) -> None:
    rows = json.loads((out / "llamafactory" / "sft.json").read_text())
    rows[0]["messages"][0]["content"] = rows[0]["messages"][0]["content"].replace("<image>", "")
    (out / "llamafactory" / "sft.json").write_text(json.dumps(rows))


def _abnormal_role(out: Path) -> None:
    rows = json.loads((out / "llamafactory" / "test.json").read_text())
    rows[2]["messages"][1]["role"] = "gpt"
    (out / "llamafactory" / "test.json").write_text(json.dumps(rows))


def _swap_easyr1_rows(out: Path) -> None:
    lines = (out / "easyr1" / "rl.jsonl").read_text().splitlines(keepends=True)
    (out / "easyr1" / "rl.jsonl").write_text("".join([lines[1], lines[0], *lines[2:]]))


def _remove_eval(out: Path) -> None:
    (out / "eval" / "test.jsonl").unlink()


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_drop_rl_row, r"llamafactory/rl.json: 4 rows, but the manifest lists 5 items"),
        (_share_image, r"in rl shares its image sha256 '[0-9a-f]{64}' with the sft split"),
        (_share_question, r"in test shares its normalised question .* with the sft split"),
        (_wrong_counts, r"manifest.json: counts .* differ from the split lists"),
        (_delete_image, r"eval/test.jsonl: row 1 \(.*\): image .* does not exist"),
        (_drop_image_token, r"llamafactory/sft.json: row 1 .*malformed row .*0 <image> tokens for 1 images"),
        (_abnormal_role, r"llamafactory/test.json: row 3 .*roles \['user', 'gpt'\], expected"),
        (_swap_easyr1_rows, r"easyr1/rl.jsonl: row 1 \(.*\): has id .*, the manifest expects"),
        (_remove_eval, r"eval/test.jsonl: missing"),
    ],
)
def test_check_fails_on_tampered_output(small: tuple[Path, Path], tamper, message: str, capsys) -> None:
    _, out = small
    assert main(["data", "check", str(out)]) == 0
    tamper(out)
    assert main(["data", "check", str(out)]) == 1
    err = capsys.readouterr().err
    assert any(re.search(message, line) for line in err.splitlines()), err


def test_cli_end_to_end(tmp_path: Path, capsys) -> None:
    assert main(["data", "synth", "--out", str(tmp_path / "src"), "--items", "40", "--seed", "5"]) == 0
    out = tmp_path / "out"
    args = ["data", "pathmmu", "--root", str(tmp_path / "src"), "--out", str(out), "--sizes", "20,10"]
    assert main([*args, "--seed", "7", "--subsets", "PubMed,EduContent"]) == 0
    err = capsys.readouterr().err
    assert "read 47 items, dropped 7 duplicates, rejected 0 invalid, kept 40" in err
    assert "split (seed 7, image-disjoint): sft 20 | rl 10 | test 10" in err
    assert "checking images" in err
    assert main(["data", "check", str(out)]) == 0
    assert (
        main(["data", "synth", "--out", str(tmp_path / "omni"), "--items", "3", "--format", "omnimedvqa"])
        == 0
    )
    assert main(["data", "omnimedvqa", "--root", str(tmp_path / "omni"), "--out", str(tmp_path / "ood")]) == 0
    assert main(["data", "check", str(tmp_path / "ood")]) == 0
    assert main(["data", "pathmmu", "--root", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert f"error: {tmp_path / 'nowhere' / 'data.json'} not found" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["pathmmu"], ["omnimedvqa"], ["synth"], ["check"]])
def test_every_command_has_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", *command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: pathvlm data" in capsys.readouterr().out


def test_make_data_without_roots_explains(repo_root: Path) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "data", "PATHMMU_ROOT=", "OMNIMEDVQA_ROOT="],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "PATHMMU_ROOT=" in result.stderr and "data/README.md" in result.stderr
