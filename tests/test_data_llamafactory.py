"""LLaMA-Factory's own dataset loader accepts the sharegpt output for the tiny model, dropping no row.

LLaMA-Factory drops rows silently (abnormal roles, ``<image>`` count != ``len(images)``), so count in and out.
"""

from __future__ import annotations

import json
from pathlib import Path

from tools.data.pathmmu import convert_pathmmu
from tools.dev.synth import write_synthetic_pathmmu


def test_llamafactory_loads_every_row(tiny_model: Path, tmp_path: Path) -> None:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    root = write_synthetic_pathmmu(tmp_path / "src", 36, seed=0)
    out = tmp_path / "out"
    convert_pathmmu(root, out, seed=0, sizes=(16, 10))
    rows = {
        name: len(json.loads((out / "llamafactory" / f"{name}.json").read_text()))
        for name in ("sft", "rl", "test")
    }
    assert rows == {"sft": 16, "rl": 10, "test": 10}

    model_args, data_args, training_args, _, _ = get_train_args(
        {
            "model_name_or_path": str(tiny_model),
            "stage": "sft",
            "do_train": True,
            "finetuning_type": "full",
            "template": "qwen2_vl",
            "dataset_dir": str(out / "llamafactory"),
            "dataset": "pathmmu_sft",
            "eval_dataset": "pathmmu_rl,pathmmu_test",
            "eval_on_each_dataset": True,
            "cutoff_len": 4096,
            "overwrite_cache": True,
            "cache_dir": str(tmp_path / "cache"),
            "output_dir": str(tmp_path / "run"),
            "report_to": "none",
            "per_device_eval_batch_size": 1,
        }
    )
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)

    assert len(module["train_dataset"]) == rows["sft"]
    assert {name: len(dataset) for name, dataset in module["eval_dataset"].items()} == {
        "pathmmu_rl": rows["rl"],
        "pathmmu_test": rows["test"],
    }
    example = module["train_dataset"][0]
    image_pad = tokenizer_module["tokenizer"].convert_tokens_to_ids("<|image_pad|>")
    assert example["input_ids"].count(image_pad) >= 4  # the image reached the model input
    assert any(label != -100 for label in example["labels"])  # the target is trained on
