"""The lean profile's LoRA SFT: the exported model is the base model with the adapter merged (full weights),
so beta (EasyR1) and the evaluation load it like any other stage's model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.mark.slow
def test_lora_adapter_is_merged_into_a_full_model_on_export(tiny_model: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from tools.recipe.run import Run
    from tools.train.engines.base import params_line
    from tools.train.engines.llamafactory import LlamaFactory

    base = AutoModelForImageTextToText.from_pretrained(tiny_model)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)  # a trained-looking adapter (B = 0 would merge to the base)
    output = tmp_path / "checkpoints"
    peft_model.save_pretrained(output)
    expected = {k: v.clone() for k, v in peft_model.merge_and_unload().state_dict().items()}
    cfg = {
        "llamafactory": {
            "finetuning_type": "lora",
            "model_name_or_path": str(tiny_model),
            "template": "qwen2_vl",
            "output_dir": str(output),
            "trust_remote_code": False,
        }
    }
    (output / "trainer_state.json").write_text('{"log_history": [{"step": 1, "loss": 1.0}]}')
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "train.log").write_text(params_line(1_000, 100_000) + "\n")  # what the engine logged
    LlamaFactory(cfg, Run.at(stage)).export()
    model_dir = stage / "model"
    assert (model_dir / "config.json").is_file() and not (model_dir / "adapter_config.json").exists()
    merged = AutoModelForImageTextToText.from_pretrained(model_dir, torch_dtype=torch.float32).state_dict()
    name = next(k for k in expected if k.endswith("q_proj.weight") and "visual" not in k)
    base_weight = AutoModelForImageTextToText.from_pretrained(tiny_model).state_dict()[name]
    assert not torch.allclose(merged[name], base_weight)  # the adapter is in the weights
    assert torch.allclose(merged[name], expected[name].to(merged[name].dtype), atol=1e-2)
    assert not list(stage.glob("merged.tmp*"))
