"""EasyR1 validates once after training whatever ``val_freq`` says; the GRPO recipes point that validation at
16 prompts of the training split, never the test split (for r1 every validation item is a judge call).
The composed config's ``val_files`` is read by EasyR1's own ``RLHFDataset``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from PIL import Image

from tools.recipe import registry
from tools.recipe.compose import compose, to_container
from tools.train.engines.paths import EASYR1_PATHS, with_absolute_paths

GRPO = [stage for stage, info in registry.stages().items() if info.engine == "easyr1"]


def write_split(folder: Path, name: str, count: int, image: Path) -> None:
    rows = [
        {
            "problem": f"<image>{name} question {i}",
            "answer": json.dumps({"id": f"{name}-{i}"}),
            "images": [str(image)],
        }
        for i in range(count)
    ]
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.mark.parametrize(("stage", "profile"), itertools.product(GRPO, registry.profiles()))
def test_validation_is_a_slice_of_the_training_split(stage: str, profile: str) -> None:
    data = to_container(compose(stage, "7b", profile))["easyr1"]["data"]
    assert data["val_files"] == data["train_files"] + "@train[:16]"
    assert "test" not in data["val_files"]


def test_easyr1_reads_16_training_prompts_for_validation(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpu_stubs: None
) -> None:
    from transformers import AutoProcessor
    from verl.utils.dataset import RLHFDataset

    folder = tmp_path / "data" / "pathmmu" / "easyr1"
    folder.mkdir(parents=True)
    image = tmp_path / "slide.png"
    Image.new("RGB", (64, 64), (200, 120, 160)).save(image)
    write_split(folder, "rl", 40, image)
    write_split(folder, "test", 30, image)
    monkeypatch.setenv("PATHVLM_DATA", str(tmp_path / "data"))
    data = with_absolute_paths(to_container(compose("r1", "7b", "h20x4"))["easyr1"], EASYR1_PATHS)[
        "data"
    ]  # as the engine writes it
    processor = AutoProcessor.from_pretrained(tiny_model)
    dataset = RLHFDataset(
        data_path=data["val_files"],
        tokenizer=processor.tokenizer,
        processor=processor,
        prompt_key=data["prompt_key"],
        answer_key=data["answer_key"],
        image_key=data["image_key"],
        filter_overlong_prompts=False,
    )
    assert [json.loads(row["answer"])["id"] for row in dataset.dataset] == [f"rl-{i}" for i in range(16)]
