"""`pathvlm data pathmmu --split authors-v2`: the authors' split rebuilt exactly from membership keys.

The fixture is laid out like the authors' data/pathmmu_image_disjoint_v2/ (manifest.json + splits/*.json of
{image, problem, solution}) over a synthetic PathMMU-schema copy (tools/dev/synth.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tools.cli import main
from tools.data.check import check_output
from tools.data.errors import DataError
from tools.data.pathmmu import convert_pathmmu
from tools.dev.authors_split_keys import derive
from tools.dev.authors_split_keys import main as derive_main
from tools.dev.synth import write_synthetic_pathmmu

FILES = {
    "sft": "subsets/sft/sft_3000_with_cot.json",  # as in the search index: the SFT split under subsets/
    "rl": "splits/rl_train_1000_without_cot.json",
    "validation": "splits/validation_385_without_cot.json",
    "test": "splits/test_0999_without_cot.json",
}


def _authors_folder(pathmmu: Path, folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Split files over the synthetic copy, image-disjoint, in a shuffled order, one single-question test
    image left out (as the authors removed one, named in their manifest's ``removal``); returns each split's
    (image, question) in file order."""
    data = json.loads((pathmmu / "data.json").read_text())
    rows = {}
    for subset in ("PubMed", "EduContent"):
        for split in ("val", "test"):  # test_tiny repeats test items
            for raw in data[subset][split]:
                rows[(raw["img"], raw["question"])] = raw
    images = sorted({img for img, _ in rows})
    owner = {img: ("sft", "sft", "rl", "validation", "test")[i % 5] for i, img in enumerate(images)}
    splits: dict[str, list[tuple[str, str]]] = {name: [] for name in FILES}
    for img, question in sorted(rows, key=lambda key: key[1][::-1]):
        splits[owner[img]].append((img, question))
    shared = Counter(img for img, _ in splits["test"])
    removed = next(member for member in splits["test"] if shared[member[0]] == 1)
    splits["test"].remove(removed)
    for name, members in splits.items():
        listed = [
            {
                "image": f"/home/someone/PathMMU/images/{img}",
                "problem": f"{q}\nOptions:\n" + "\n".join(rows[(img, q)]["options"]),
                "solution": rows[(img, q)]["answer"],
            }
            for img, q in members
        ]
        path = folder / FILES[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(listed, indent=2))
    primary = {name: {"qa_count": len(members)} for name, members in splits.items()}
    manifest = {"primary_splits": primary, "removal": {"opaque_image_basename": removed[0]}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return splits


@pytest.fixture(scope="module")
def authors(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("authors")
    pathmmu = write_synthetic_pathmmu(root / "pathmmu", 90, seed=3)
    splits = _authors_folder(pathmmu, root / "v2")
    assert derive_main([str(root / "v2"), "--out", str(root / "keys.json")]) == 0
    return pathmmu, root / "keys.json", splits


def _members(manifest: dict, split: str) -> list[tuple[str, str]]:
    return [(entry["image"], entry["question"]) for entry in manifest["splits"][split]]


def test_authors_split_reproduces_membership_and_order(
    authors: tuple[Path, Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pathmmu, keys, expected = authors
    key_file = json.loads(keys.read_text())
    assert "Options" not in keys.read_text() and "Case" not in keys.read_text()  # keys only, no text
    assert key_file["counts"] == {name: len(members) for name, members in expected.items()}
    out = tmp_path / "out"
    code = main(["data", "pathmmu", "--root", str(pathmmu), "--out", str(out)] + ["--split", "authors-v2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err[-1].startswith("error: ")  # the default key file does not match this copy
    manifest = convert_pathmmu(pathmmu, out, split="authors-v2", split_keys=keys)
    for name, members in expected.items():
        assert _members(manifest, name) == members, name
    assert manifest["split"] == "authors-v2"
    assert manifest["split_keys"]["sha256"] == hashlib.sha256(keys.read_bytes()).hexdigest()
    assert manifest["key_stats"] == {"problems": 0, "left_out": 0, "excluded_items": 1}
    assert set(manifest["audit"]["exact_content_overlap_counts"].values()) == {0}
    assert len(manifest["audit"]["basename_overlap_counts"]) == 6
    assert (out / "eval" / "validation.jsonl").is_file()  # the selection's validation set
    assert check_output(out) == []
    assert "no overlap" in capsys.readouterr().err


def test_image_keys_alone_rebuild_the_split(authors: tuple[Path, Path, dict], tmp_path: Path) -> None:
    """The shipped form: image prefixes of rl/validation/test, sft the rest, the removed image excluded."""
    pathmmu, keys, expected = authors
    key_file = json.loads(keys.read_text())
    del key_file["items"], key_file["images"]["sft"]
    (tmp_path / "images.json").write_text(json.dumps(key_file))
    manifest = convert_pathmmu(
        pathmmu, tmp_path / "out", split="authors-v2", split_keys=tmp_path / "images.json"
    )
    for name, members in expected.items():
        assert sorted(_members(manifest, name)) == sorted(members), name


def test_authors_split_reports_missing_and_ambiguous_keys(
    authors: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    pathmmu, keys, expected = authors
    copy = tmp_path / "copy"
    shutil.copytree(pathmmu / "images", copy / "images")
    data = json.loads((pathmmu / "data.json").read_text())
    gone = (expected["test"][2], expected["sft"][1])
    for split in data.values():
        for name, listed in split.items():
            split[name] = [raw for raw in listed if (raw["img"], raw["question"]) not in gone]
    img, question = expected["rl"][0]
    items = (
        data["PubMed"]["val"]
        + data["PubMed"]["test"]
        + data["EduContent"]["val"]
        + data["EduContent"]["test"]
    )
    twin = next(raw for raw in items if (raw["img"], raw["question"]) == (img, question))
    (copy / "images" / "twin").mkdir()
    shutil.copy(copy / "images" / img, copy / "images" / "twin" / img)
    data["EduContent"]["val"].append({**twin, "No": 999, "img": f"twin/{img}"})
    (copy / "data.json").write_text(json.dumps(data))
    with pytest.raises(DataError) as error:
        convert_pathmmu(copy, tmp_path / "out", split="authors-v2", split_keys=keys)
    message = str(error.value)
    assert "2 key(s) not found in your PathMMU copy, e.g. sft item 2" in message
    assert "1 key(s) found more than once, e.g. rl item 1" in message and "EduContent/val/999" in message
    assert f"1 listed image(s) found more than once, e.g. rl image {img[:12]}" in message
    assert "split sizes differ: sft" in message
    assert not (tmp_path / "out").exists()
    manifest = convert_pathmmu(copy, tmp_path / "out", split="authors-v2", split_keys=keys, skip_invalid=True)
    assert manifest["key_stats"]["left_out"] == 2  # both items of the duplicated key
    assert manifest["counts"]["rl"] == len(expected["rl"]) - 1


def test_key_derivation_checks_sizes_and_uniqueness(authors: tuple[Path, Path, dict], tmp_path: Path) -> None:
    pathmmu, _, _ = authors
    folder = tmp_path / "v2"
    _authors_folder(pathmmu, folder)
    path = folder / FILES["rl"]
    rows = json.loads(path.read_text())
    path.write_text(json.dumps([*rows, rows[0]]))
    with pytest.raises(SystemExit, match=r"items, its manifest.json says"):
        derive(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(SystemExit, match=r"1 duplicate key\(s\), e.g. rl item key \d+ repeats rl item key 1"):
        derive(folder)


def test_shipped_key_file_matches_their_manifest() -> None:
    """data/splits/authors-v2.json: keys only (no PathMMU text), a list per split but sft, their unique
    image counts (rl 708 / validation 272 / test 707), sizes, the removed image, no image in two splits."""
    from tools.data.authors_split import load_keys

    path = Path(__file__).resolve().parents[1] / "data" / "splits" / "authors-v2.json"
    keys, digest = load_keys(path)
    assert len(digest) == 64
    assert {name: len(prefixes) for name, prefixes in keys.images.items()} == {
        "rl": 708,
        "validation": 272,
        "test": 707,
    }
    assert keys.counts == {"sft": 3000, "rl": 1000, "validation": 385, "test": 999}
    assert keys.excluded == {"8dea89dfc932"}
    listed = [prefix for prefixes in keys.images.values() for prefix in prefixes]
    assert len(listed) == len(set(listed)) and not keys.excluded & set(listed)
    assert all(len(prefix) == 12 and set(prefix) <= set("0123456789abcdef") for prefix in listed)
    assert set(json.loads(path.read_text(encoding="utf-8"))) <= {
        "version",
        "source",
        "key",
        "derivation",
        "counts",
        "excluded_images",
        "files",
        "images",
        "items",
    }
