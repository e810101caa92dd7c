"""Real-format PathMMU / OmniMedVQA fixtures: every item converts, scores and splits right; bad input is an
item error; a conversion is all-or-nothing. CPU only, seconds.

The fixtures follow the public layouts (PathMMU ``data.json`` {subset: {split: [item]}} with ``No``, ``img``
as a 64-hex content-hash file name, ``question``, ``options`` "A) ..", ``answer``, ``explanation``, and the
subset-specific ``tw_id`` / ``img_position`` / ``ref_web`` / ``source_img``; OmniMedVQA
``QA_information/Open-access/<Subset>.json`` with ``option_A``.. and ``image_path`` under ``Images/``),
worded like the real items (options with "(H&E)", "C) B) ..", 3- and 5-option items, bare-letter answers).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from rewards import accuracy_reward
from rewards.rules import extract_answer
from tools.cli import main
from tools.data.check import check_output
from tools.data.errors import DataError, ItemError
from tools.data.items import Item, lettered_options, match_answer
from tools.data.omnimedvqa import convert_omnimedvqa
from tools.data.pathmmu import convert_pathmmu
from tools.data.split import split_items

ALL_SUBSETS = ("PubMed", "EduContent", "SocialPath", "Atlas", "PathCLS")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def image_bytes(n: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (n * 7 % 256, n * 13 % 256, n * 29 % 256)).save(buffer, format=fmt)
    return buffer.getvalue()


def hashed_image(images: Path, n: int, ext: str) -> str:
    """An image stored under its content hash, as in PathMMU's images.zip."""
    data = image_bytes(n, "JPEG" if ext == ".jpg" else "PNG")
    name = hashlib.sha256(data).hexdigest() + ext
    images.mkdir(parents=True, exist_ok=True)
    (images / name).write_bytes(data)
    return name


REAL_OPTIONS = [  # (options, answer) worded like real PathMMU items
    (
        [
            "A) Periodic acid-Schiff (PAS) stain",
            "B) Masson's trichrome stain",
            "C) Hematoxylin and eosin (H&E) stain",
            "D) Immunohistochemistry for CD34",
        ],
        "C) Hematoxylin and eosin (H&E) stain",
    ),
    (["A) Liver", "B) Skin", "C) B) Skin"], "C) B) Skin"),
    (["A) Granuloma", "B) Abscess", "C) Fibrosis", "D) Both A) and B)"], "D) Both A) and B)"),
    (
        ["A) Anti-IL-6) receptor antibody", "B) Anti-TNF/IL-1 therapy", "C) Steroids and/or rest"],
        "A) Anti-IL-6) receptor antibody",
    ),
    (
        [
            "A) Adenocarcinoma",
            "B) Squamous cell carcinoma",
            "C) Small cell carcinoma",
            "D) Large cell carcinoma",
            "E) Carcinoid tumour",
        ],
        "E) Carcinoid tumour",
    ),
    (
        ["A) Type I\npneumocytes", "B) Type II pneumocytes", "C) Alveolar macrophages"],
        "A) Type I\npneumocytes",
    ),
]


def real_pathmmu(root: Path, per_subset: int = 12) -> dict:
    """All five subsets, real field sets, PubMed PNG / others JPEG, one byte-identical image copy."""
    images = root / "images"
    data: dict = {}
    n = 0
    for subset in ALL_SUBSETS:
        data[subset] = {"val": [], "test": [], "test_tiny": []}
        ext = ".png" if subset == "PubMed" else ".jpg"
        for k in range(per_subset):
            n += 1
            split = ("val", "test", "test_tiny")[k % 3]
            options, answer = REAL_OPTIONS[k % len(REAL_OPTIONS)]
            item = {
                "No": len(data[subset][split]),
                "img": hashed_image(images, n, ext),
                "question": f"{subset} case {k}: which option best describes the finding in this image?",
                "options": options,
                "answer": answer,
                "explanation": "The morphology is typical." if k % 4 else "",
            }
            if subset == "SocialPath":
                item |= {"tw_id": str(10**17 + k), "img_position": 1, "ref_web": "https://twitter.com/x"}
                if k < 2:
                    item["answer"] = answer[0]  # bare letter, as in 5 real SocialPath items
            if subset in ("Atlas", "PathCLS"):
                item["source_img"] = f"source/{k}.tif"
            data[subset][split].append(item)
    copy = data["PubMed"]["val"][0]["img"]  # a byte-identical image under another name
    (images / ("f" * 64 + ".png")).write_bytes((images / copy).read_bytes())
    data["PubMed"]["val"].append(
        {**data["PubMed"]["val"][1], "No": len(data["PubMed"]["val"]), "img": "f" * 64 + ".png"}
        | {"question": "A different question on a copied image?"}
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.json").write_text(json.dumps(data, indent=1))
    return data


@pytest.fixture(scope="module")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real") / "PathMMU"
    real_pathmmu(root)
    return root


def test_every_real_item_converts_and_its_gold_scores_one(real_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = convert_pathmmu(real_root, out, sizes=(20, 15), subsets=ALL_SUBSETS)
    assert manifest["stats"]["kept"] == 61 and manifest["stats"]["rejected"] == 0
    assert manifest["stats"]["bare_letter_answers"] == 2
    golds = []
    for split in ("sft", "rl", "test"):
        for row in json.loads((out / "llamafactory" / f"{split}.json").read_text()):
            target = row["messages"][1]["content"]
            golds.append(extract_answer(target))
            assert accuracy_reward(target, extract_answer(target)) == 1.0, target
    for row in read_jsonl(out / "easyr1" / "rl.jsonl") + read_jsonl(out / "easyr1" / "test.jsonl"):
        gold = json.loads(row["answer"])["ground_truth"]
        assert accuracy_reward(f"<think>x</think><answer>{gold}</answer>", row["answer"]) == 1.0
        assert "\n" not in "".join(json.loads(row["answer"])["options"])  # one option per prompt line
    assert "C) Hematoxylin and eosin (H&E) stain" in golds and "D) Both A) and B)" in golds
    assert "A) Type I pneumocytes" in golds  # the newline became a space
    social = [e for s in manifest["splits"].values() for e in s if e["subset"] == "SocialPath"]
    assert len(social) == 12
    assert check_output(out) == []


@pytest.mark.parametrize(("options", "answer"), REAL_OPTIONS, ids=range(len(REAL_OPTIONS)))
def test_real_options_score_one_for_gold_zero_for_others(options: list[str], answer: str) -> None:
    canonical = lettered_options(options, Path("data.json"), "x")
    gold, bare = match_answer(answer, canonical, Path("data.json"), "x")
    assert not bare
    assert accuracy_reward(f"<answer>{gold}</answer>", gold) == 1.0
    for other in canonical:
        if other != gold:
            assert accuracy_reward(f"<answer>{other}</answer>", gold) == 0.0
    assert accuracy_reward(f"<answer>{canonical[0]}, {canonical[1]}</answer>", gold) == 0.0  # a hedge


PIECES = [
    "Hematoxylin and eosin (H&E)",
    "(PAS)",
    "IL-6) receptor",
    "A) and B)",
    "B)",
    "and/or",
    "or",
    "and",
    "&",
    "/",
    "Type A",
    "vitamin B12",
    "C.",
    "(D)",
    "fibres",
    "stain",
    "Both",
    "E:",
    "T-cell",
    "x/y",
    "; see",
    ",",
    "CD3/CD20",
]


def generated_options(rng: random.Random) -> list[str]:
    texts: list[str] = []
    while len(texts) < rng.choice((3, 4, 5)):
        text = " ".join(rng.choice(PIECES) for _ in range(rng.randint(1, 4)))
        if text not in texts:
            texts.append(text)
    return [f"{'ABCDE'[i]}) {t}" for i, t in enumerate(texts)]


@pytest.mark.parametrize("seed", range(300))
def test_property_accepted_gold_always_scores_one(seed: int) -> None:
    """Generated option texts with parentheses, '&', '/', 'and', 'or', letters inside words, abbreviations:
    the converter either accepts the item and its gold answer scores 1.0 (every other option 0.0), or
    rejects it with an item error; never a silent 0 at training time."""
    rng = random.Random(seed)
    options = generated_options(rng)
    answer = rng.choice(options)
    try:
        canonical = lettered_options(options, Path("data.json"), "x")
        gold, _ = match_answer(answer, canonical, Path("data.json"), "x")
    except ItemError:
        return
    assert accuracy_reward(f"<think>t</think><answer>{gold}</answer>", gold) == 1.0, options
    for other in canonical:
        if other != gold:
            assert accuracy_reward(f"<answer>{other}</answer>", gold) == 0.0, (options, other)


@pytest.mark.parametrize(
    ("options", "answer", "message"),
    [
        (["A) Liver", "B) Use </answer> here", "C) Skin"], "B) Use </answer> here", "would score 0 against"),
        (["A) Liver", "B) ...", "C) Skin"], "A) Liver", r"option 'B\) \.\.\.' has no text to compare"),
        (["A) Skin.", "B) skin", "C) Bone"], "C) Bone", "have the same text"),
        (["A) Liver", "B) Lung"], "C", r"answer 'C' names no option"),
    ],
)
def test_unscorable_items_are_item_errors(options: list[str], answer: str, message: str) -> None:
    with pytest.raises(ItemError, match=message):
        match_answer(answer, lettered_options(options, Path("data.json"), "x"), Path("data.json"), "x")


@pytest.mark.parametrize(("answer", "expected"), [("A", "A) Liver"), ("B)", "B) Lung"), ("(C)", "C) Skin")])
def test_bare_letter_answers_resolve_to_their_option(answer: str, expected: str) -> None:
    options = ["A) Liver", "B) Lung", "C) Skin"]
    assert match_answer(answer, options, Path("data.json"), "x") == (expected, True)


# --- the split -------------------------------------------------------------------------------------------


def fake_items(group_sizes: list[int]) -> list[Item]:
    """Items in groups (one image per group), for the splitter alone."""
    items = []
    for g, n in enumerate(group_sizes):
        for k in range(n):
            items.append(
                Item(
                    id=f"PubMed/test/{g}-{k}",
                    subset="PubMed",
                    image_ref=f"{g}.png",
                    image=Path(f"/images/{g}.png"),
                    question=f"question {g}-{k}",
                    options=[],
                    answer="",
                    sha256=f"sha-{g}",
                )
            )
    return items


def brute_feasible(groups: list[int], sizes: tuple[int, ...]) -> bool:
    for assignment in itertools.product(range(len(sizes) + 1), repeat=len(groups)):
        sums = [0] * (len(sizes) + 1)
        for size, split in zip(groups, assignment, strict=True):
            sums[split] += size
        if tuple(sums[:-1]) == sizes:
            return True
    return False


def check_split(groups: list[int], sizes: tuple[int, ...], seed: int) -> None:
    items = fake_items(groups)
    splits = split_items(items, sizes, seed)
    assert [len(s) for s in splits[:-1]] == list(sizes)
    assert sum(map(len, splits)) == len(items)
    where = {item.id: n for n, split in enumerate(splits) for item in split}
    for item in items:
        assert where[item.id] == where[f"PubMed/test/{item.image.stem}-0"]  # groups stay whole


def test_greedy_counterexample_is_split_exactly() -> None:
    """Greedy (earliest groups first) takes 2+1 for sft and cannot make rl=2; 3 / 1+1 / 2 works."""
    for seed in range(20):
        check_split([2, 1, 1, 3], (3, 2), seed)


@pytest.mark.parametrize("case", range(120))
def test_property_split_exact_whenever_feasible(case: int) -> None:
    rng = random.Random(case)
    groups = [rng.choice((1, 1, 2, 3, 5, 8)) for _ in range(rng.randint(3, 8))]
    total = sum(groups)
    k = rng.choice((2, 3))
    sizes = tuple(rng.randint(1, max(1, total // (k + 1))) for _ in range(k))
    if sum(sizes) >= total:
        return
    if brute_feasible(groups, sizes):
        check_split(groups, sizes, case)
        return
    with pytest.raises(DataError) as error:
        split_items(fake_items(groups), sizes, case)
    message = str(error.value)
    assert f"{total} items form {len(groups)} groups" in message
    nearest = message.rsplit("nearest feasible --sizes: ", 1)[1]
    if len(groups) <= k:
        assert nearest == f"none, {k + 1} splits need more than {len(groups)} groups"
        return
    for option in nearest.split("; "):
        candidate = tuple(int(x) for x in option.split(","))
        assert brute_feasible(groups, candidate), (groups, sizes, candidate)


def test_issue_example_reports_real_group_count_and_nearest_sizes() -> None:
    """[1,1,1,1,2,3,8,11] with 10,8 needs five 1-groups (8+1+1 and 3+2+1+1+1): truly impossible."""
    groups = [1, 1, 1, 1, 2, 3, 8, 11]
    assert not brute_feasible(groups, (10, 8))
    with pytest.raises(
        DataError, match=r"28 items form 8 groups .*nearest feasible --sizes: 9,8; 10,7; 11,8"
    ):
        split_items(fake_items(groups), (10, 8), 0)


def test_paper_sizes_leave_exactly_1385_for_test() -> None:
    rng = random.Random(0)
    groups: list[int] = []
    while sum(groups) < 5385:
        groups.append(min(rng.choice((1, 1, 1, 1, 2, 2, 3, 4, 7)), 5385 - sum(groups)))
    splits = split_items(fake_items(groups), (3000, 1000), 42)
    assert [len(s) for s in splits] == [3000, 1000, 1385]


def test_sizes_are_printed_and_a_non_paper_test_size_warns(real_root: Path, tmp_path: Path, capsys) -> None:
    args = ["data", "pathmmu", "--root", str(real_root), "--out", str(tmp_path / "out")]
    assert main([*args, "--subsets", ",".join(ALL_SUBSETS), "--sizes", "20,15"]) == 0
    err = capsys.readouterr().err
    assert "split (seed 42, image-disjoint): sft 20 | rl 15 | test 26" in err
    assert "warning" not in err
    with pytest.raises(DataError, match="too few items: 25 kept"):
        convert_pathmmu(real_root, tmp_path / "paper", subsets=("PubMed", "EduContent"))
    capsys.readouterr()
    import tools.data.pathmmu as pathmmu

    pathmmu._report(
        {"seed": 1, "split_unit": "image", "counts": {"sft": 3000, "rl": 1000, "test": 1380}}
        | {"stats": {"kept": 5380, "no_explanation": 0}, "target_style": "answer"},
        tmp_path,
        pathmmu.SIZES,
        0,
    )
    assert "warning: the test split has 1380 items, the paper's has 1385" in capsys.readouterr().err


# --- validation split and split unit (issue 19's data contract) ------------------------------------------


def shared_images_root(root: Path) -> Path:
    """12 images with 3 questions each."""
    items = []
    for n in range(36):
        img = hashed_image(root / "images", n // 3, ".png")
        items.append(
            {
                "No": n,
                "img": img,
                "question": f"Question {n} about this section?",
                "options": ["A) Liver", "B) Lung", "C) Skin"],
                "answer": "B) Lung",
                "explanation": "x",
            }
        )
    (root / "data.json").write_text(json.dumps({"PubMed": {"test": items}}))
    return root


def test_validation_split_is_disjoint_and_in_eval_format(real_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "data",
        "pathmmu",
        "--root",
        str(real_root),
        "--out",
        str(out),
        "--subsets",
        ",".join(ALL_SUBSETS),
    ]
    assert main([*args, "--sizes", "20,15", "--val", "10"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["splits"]) == ["sft", "rl", "validation", "test"]
    assert manifest["counts"] == {"sft": 20, "rl": 15, "validation": 10, "test": 16}
    keys = {
        key: [{e[key] for e in manifest["splits"][s]} for s in manifest["splits"]]
        for key in ("id", "image", "sha256")
    }
    for key, sets in keys.items():
        for a, b in itertools.combinations(sets, 2):
            assert not a & b, key
    validation = read_jsonl(out / "eval" / "validation.jsonl")
    assert [r["id"] for r in validation] == [e["id"] for e in manifest["splits"]["validation"]]
    assert set(validation[0]) == set(read_jsonl(out / "eval" / "test.jsonl")[0])
    assert len(read_jsonl(out / "easyr1" / "validation.jsonl")) == 10
    assert "pathmmu_validation" in json.loads((out / "llamafactory" / "dataset_info.json").read_text())
    assert check_output(out) == []
    (out / "eval" / "validation.jsonl").unlink()
    assert any("validation.jsonl: missing" in p for p in check_output(out))


def test_question_unit_lets_images_cross_splits_image_unit_never(tmp_path: Path) -> None:
    root = shared_images_root(tmp_path / "src")
    crossed = 0
    for seed in range(5):
        for unit in ("image", "question"):
            out = tmp_path / f"{unit}{seed}"
            manifest = convert_pathmmu(
                root, out, seed=seed, sizes=(12, 9), subsets=("PubMed",), split_unit=unit
            )
            assert manifest["split_unit"] == unit
            owners: dict[str, set[str]] = {}
            for split, entries in manifest["splits"].items():
                for entry in entries:
                    owners.setdefault(entry["image"], set()).add(split)
            shared = sum(len(s) > 1 for s in owners.values())
            if unit == "image":
                assert shared == 0
            else:
                crossed += shared
            assert check_output(out) == []
    assert crossed > 0


# --- bad input -------------------------------------------------------------------------------------------


def small_root(root: Path, n: int = 12) -> dict:
    items = []
    for k in range(n):
        img = hashed_image(root / "images", k, ".png")
        items.append(
            {
                "No": k,
                "img": img,
                "question": f"What is shown in case {k}?",
                "options": ["A) Liver", "B) Lung", "C) Skin"],
                "answer": "C) Skin",
                "explanation": "Keratin.",
            }
        )
    return {"PubMed": {"test": items}}


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb), without pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def _truncated_jpeg(item: dict, root: Path) -> None:
    data = image_bytes(99, "JPEG")
    (root / "images" / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    item["img"] = "cut.jpg"


def _bomb(item: dict, root: Path) -> None:
    (root / "images" / "bomb.png").write_bytes(png_header_only(20000, 20000))
    item["img"] = "bomb.png"


def _sixteen_bit(item: dict, root: Path) -> None:
    Image.new("I;16", (16, 16), 40000).save(root / "images" / "deep.png")
    item["img"] = "deep.png"


def _outside(item: dict, root: Path) -> None:
    (root / "outside").mkdir(exist_ok=True)
    (root / "outside" / "x.png").write_bytes(image_bytes(5))
    item["img"] = "../outside/x.png"


BAD_ITEMS = {
    "truncated JPEG": (
        _truncated_jpeg,
        r"cut.jpg is not a readable image \((image file is truncated|Truncated File Read)",
    ),
    "decompression bomb": (_bomb, r"bomb.png is too large to decode safely"),
    "16-bit PNG": (_sixteen_bit, r"deep.png has I;16 pixels \(16/32-bit\)"),
    "lone surrogate": (
        lambda i, r: i.update(question="Which \ud800 stain?"),
        r"field 'question' is not valid",
    ),
    "27 options": (
        lambda i, r: i.update(options=[f"{chr(65 + n)}) o{n}" if n < 26 else f"[) o{n}" for n in range(27)]),
        r"expected 2 to 26 options \(A-Z\), got 27",
    ),
    "path outside images/": (_outside, r"image '../outside/x.png' must be a relative path inside images/"),
    "absolute path": (lambda i, r: i.update(img=str(r / "images" / i["img"])), r"must be a relative path"),
    "./ path": (lambda i, r: i.update(img="./" + i["img"]), r"must be a relative path inside images/"),
}


@pytest.mark.parametrize("case", list(BAD_ITEMS))
def test_bad_item_is_an_item_error_never_a_traceback(case: str, tmp_path: Path) -> None:
    mutate, message = BAD_ITEMS[case]
    root = tmp_path / "src"
    data = small_root(root)
    mutate(data["PubMed"]["test"][3], root)
    (root / "data.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as error:
        convert_pathmmu(root, tmp_path / "out", sizes=(4, 4), subsets=("PubMed",))
    assert str(error.value).startswith(f"{root / 'data.json'}: item PubMed/test[3] (No=3)")
    assert not (tmp_path / "out").exists()
    manifest = convert_pathmmu(root, tmp_path / "out", sizes=(4, 4), subsets=("PubMed",), skip_invalid=True)
    assert manifest["stats"]["rejected"] == 1 and manifest["stats"]["kept"] == 11
    (reject,) = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    assert reject["item"].startswith("PubMed/test[3]")
    assert check_output(tmp_path / "out") == []


# --- all-or-nothing --------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("failure", [KeyboardInterrupt, PermissionError])
def test_interrupted_reconversion_leaves_the_old_output(
    failure: type[BaseException], real_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tools.data.pathmmu as pathmmu

    out = tmp_path / "out"
    convert_pathmmu(real_root, out, seed=1, sizes=(20, 15), subsets=ALL_SUBSETS)
    before = snapshot(out)
    real_write = pathmmu.write_jsonl

    def dying_write(path: Path, rows) -> None:  # killed at the last file, after sft.json was written
        if path.parent.name == "eval":
            raise failure("killed")
        real_write(path, rows)

    monkeypatch.setattr(pathmmu, "write_jsonl", dying_write)
    with pytest.raises(failure):
        convert_pathmmu(real_root, out, seed=2, sizes=(20, 15), subsets=ALL_SUBSETS)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left behind
    assert check_output(out) == []


def test_failed_split_keeps_output_and_writes_rejects_beside(tmp_path: Path) -> None:
    root = tmp_path / "src"
    data = small_root(root)
    data["PubMed"]["test"][0]["answer"] = "D) Bone"
    (root / "data.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="too few items: 11 kept"):
        convert_pathmmu(root, tmp_path / "out", sizes=(8, 3), subsets=("PubMed",), skip_invalid=True)
    assert not (tmp_path / "out").exists()
    (reject,) = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert "answer 'D) Bone' is not among the options" in reject["error"]


def test_refuses_to_replace_a_folder_that_is_not_an_output(real_root: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="refusing to replace .*mine: it is not an output of `pathvlm data`"):
        convert_pathmmu(real_root, tmp_path / "mine", sizes=(20, 15), subsets=ALL_SUBSETS)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_check_finds_files_that_differ_from_the_manifest(real_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert_pathmmu(real_root, out, sizes=(20, 15), subsets=ALL_SUBSETS)
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert {"llamafactory/sft.json", "easyr1/rl.jsonl", "eval/test.jsonl"} <= set(files)
    (out / "llamafactory" / "sft.json").write_text((out / "llamafactory" / "sft.json").read_text() + " ")
    (out / "eval" / "old_subset.jsonl").write_text("")
    problems = check_output(out)
    assert any("sft.json: changed since the conversion" in p for p in problems)
    assert any("old_subset.jsonl: not written by the conversion" in p for p in problems)


# --- OmniMedVQA ------------------------------------------------------------------------------------------


def real_omnimedvqa(root: Path) -> Path:
    """``Chest CT Scan.json`` and ``ISIC2020.json`` as in the real QA_information, image paths with spaces."""
    chest, isic = [], []
    folder = "Images/Chest CT Scan/test/adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib"
    for n in range(4):
        path = f"{folder}/00013{n} ({n + 8}).png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(image_bytes(n))
        record = {
            "dataset": "Chest CT Scan",
            "question_id": f"Chest CT Scan_{n:04d}",
            "question_type": "Disease Diagnosis",
            "question": "What is the specific diagnosis of the lung shown in this CT image?",
            "gt_answer": "adenocarcinoma." if n == 0 else "Adenocarcinoma",
            "option_A": "Large cell carcinoma",
            "option_B": "Adenocarcinoma",
            "option_C": "Squamous cell carcinoma",
            "option_D": None if n == 1 else "Normal",
            "image_path": path,
        }
        record["modality" if n == 2 else "modality_type"] = "CT(Computed Tomography)"
        chest.append(record)
    for n in range(3):
        path = f"Images/ISIC2020/ISIC_00{n}.jpg"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(image_bytes(10 + n, "JPEG"))
        isic.append(
            {
                "dataset": "ISIC2020",
                "question_id": f"ISIC2020_{n:04d}",
                "question_type": "Disease Diagnosis",
                "question": "Is the lesion in this dermoscopy image benign or malignant?",
                "gt_answer": "Benign",
                "option_A": "Malignant",
                "option_B": "Benign",
                "image_path": path,
                "modality_type": "Dermoscopy",
            }
        )
    (root / "QA_information" / "Open-access").mkdir(parents=True)
    (root / "QA_information" / "Open-access" / "Chest CT Scan.json").write_text(json.dumps(chest))
    (root / "QA_information" / "Open-access" / "ISIC2020.json").write_text(json.dumps(isic))
    return root


def test_real_omnimedvqa_converts_and_scores(tmp_path: Path) -> None:
    root = real_omnimedvqa(tmp_path / "OmniMedVQA")
    out = tmp_path / "out"
    manifest = convert_omnimedvqa(root, out, subsets=("Chest CT Scan", "ISIC2020"))
    assert manifest["counts"] == {"chest_ct_scan": 4, "isic2020": 3}
    rows = read_jsonl(out / "eval" / "chest_ct_scan.jsonl")
    assert rows[0]["answer"] == "B) Adenocarcinoma"  # "adenocarcinoma." matched as the reward compares
    assert rows[1]["options"] == [
        "A) Large cell carcinoma",
        "B) Adenocarcinoma",
        "C) Squamous cell carcinoma",
    ]
    assert all(Path(r["image"]).is_file() and "(" in r["image"] for r in rows)
    for row in rows + read_jsonl(out / "eval" / "isic2020.jsonl"):
        assert accuracy_reward(f"<answer>{row['answer']}</answer>", row["answer"]) == 1.0
    assert check_output(out) == []

    convert_omnimedvqa(root, out, subsets=("ISIC2020",))  # fewer subsets: no stale eval file stays
    assert sorted(p.name for p in (out / "eval").iterdir()) == ["isic2020.jsonl"]
    assert check_output(out) == []


def test_omnimedvqa_root_without_qa_information_names_the_inner_folder(tmp_path: Path) -> None:
    real_omnimedvqa(tmp_path / "download" / "OmniMedVQA")
    with pytest.raises(
        DataError, match=r"inner OmniMedVQA/ folder that OmniMedVQA.zip unpacks into \(it has"
    ):
        convert_omnimedvqa(tmp_path / "download", tmp_path / "out", subsets=("ISIC2020",))


@pytest.mark.parametrize(
    ("path", "message"),
    [("../x.png", "must be a relative path inside the OmniMedVQA root"), ("/etc/x.png", "relative path")],
)
def test_omnimedvqa_image_outside_root(path: str, message: str, tmp_path: Path) -> None:
    root = real_omnimedvqa(tmp_path / "OmniMedVQA")
    qa = root / "QA_information" / "Open-access" / "ISIC2020.json"
    rows = json.loads(qa.read_text())
    rows[1]["image_path"] = path
    qa.write_text(json.dumps(rows))
    with pytest.raises(DataError, match=message):
        convert_omnimedvqa(root, tmp_path / "out", subsets=("ISIC2020",))


def test_evaluation_reports_the_gold_choice_when_it_reads_like_a_list() -> None:
    from tools.evaluation.score import score

    result = score("<think>t</think><answer>D) Both A) and B)</answer>", "D) Both A) and B)")
    assert result["correct"] and result["letter_correct"] and result["parsed_letter"] == "D"


def test_leftovers_of_a_killed_conversion_are_tidied(real_root: Path, tmp_path: Path, capsys) -> None:
    """SIGKILL leaves the half-written folder, or (between the two renames) only the renamed old output."""
    out = tmp_path / "out"
    convert_pathmmu(real_root, out, seed=1, sizes=(20, 15), subsets=ALL_SUBSETS)
    dead = 2**22 + 12345  # above the default pid_max: no such process
    out.rename(tmp_path / f".out.old-{dead}-0a0a0a0a")
    (tmp_path / f".out.new-{dead}-0b0b0b0b" / "llamafactory").mkdir(parents=True)
    (tmp_path / ".out.new-1-0c0c0c0c").mkdir()  # pid 1 is alive: another conversion's, left alone
    convert_pathmmu(real_root, out, seed=2, sizes=(20, 15), subsets=ALL_SUBSETS)
    assert f"restored the previous output {out} from .out.old-{dead}-0a0a0a0a" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.new-1-0c0c0c0c", "out"]
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    assert check_output(out) == []
