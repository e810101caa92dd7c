"""The tiny offline Qwen2.5-VL: loads like the real checkpoints, generates from an image, is deterministic."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tools.common.prompt import build_prompt
from tools.dev.tiny_model import SPECIAL_TOKENS


def _digest(model_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(model_dir.iterdir())}


def test_config_reloads_as_qwen2_5_vl_in_flat_layout(tiny_model: Path) -> None:
    from transformers import AutoConfig

    raw = json.loads((tiny_model / "config.json").read_text())
    assert raw["model_type"] == "qwen2_5_vl" and "text_config" not in raw
    config = AutoConfig.from_pretrained(tiny_model)
    assert config.model_type == "qwen2_5_vl"
    assert sum(config.rope_scaling["mrope_section"]) == config.hidden_size // config.num_attention_heads // 2


def test_special_token_ids_match_config(tiny_model: Path) -> None:
    from transformers import AutoConfig, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    config = AutoConfig.from_pretrained(tiny_model)
    ids = processor.tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    assert len(set(ids)) == len(SPECIAL_TOKENS) and processor.tokenizer.unk_token_id not in ids
    by_token = dict(zip(SPECIAL_TOKENS, ids, strict=True))
    assert config.image_token_id == by_token["<|image_pad|>"]
    assert config.video_token_id == by_token["<|video_pad|>"]
    assert config.vision_start_token_id == by_token["<|vision_start|>"]
    assert config.vision_end_token_id == by_token["<|vision_end|>"]
    assert processor.tokenizer.eos_token == "<|im_end|>" and config.eos_token_id == by_token["<|im_end|>"]
    assert processor.tokenizer.pad_token_id == by_token["<|endoftext|>"]
    assert config.vocab_size >= len(processor.tokenizer)
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"


def test_generates_from_image_and_question(tiny_model: Path) -> None:
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model).eval()
    prompt = build_prompt("Which tissue is shown?", ["A) Red tissue", "B) Blue tissue"])
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text.count("<|image_pad|>") == 1 and text.endswith("<|im_start|>assistant\n")
    inputs = processor(text=[text], images=[Image.new("RGB", (56, 56), (200, 30, 30))], return_tensors="pt")
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == 4  # 56 x 56 pixels -> 4 x 4 patches -> 2 x 2 merged tokens
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1] :]
    assert len(new_tokens) > 0
    assert isinstance(processor.decode(new_tokens, skip_special_tokens=True), str)


def test_llamafactory_qwen2_vl_template_accepts_it(tiny_model: Path) -> None:
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    template = get_template_and_fix_tokenizer(processor.tokenizer, DataArguments(template="qwen2_vl"))
    messages = [{"role": "user", "content": "<image>What is shown?"}, {"role": "assistant", "content": "A"}]
    messages = template.mm_plugin.process_messages(messages, [Image.new("RGB", (56, 56))], [], [], processor)
    prompt_ids, answer_ids = template.encode_oneturn(processor.tokenizer, messages)
    assert prompt_ids.count(processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")) == 4
    assert processor.tokenizer.decode(answer_ids) == "A<|im_end|>\n"


def test_cli_rebuild_is_byte_identical(tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "tools.cli", "tiny-model", "--out", str(out)], check=True)
    assert _digest(out) == _digest(tiny_model)
    size = sum(p.stat().st_size for p in out.iterdir())
    assert size < 5_000_000


@pytest.mark.parametrize("seed", [1])
def test_other_seed_gives_other_weights(tmp_path: Path, tiny_model: Path, seed: int) -> None:
    from tools.dev.tiny_model import build_tiny_model

    out = build_tiny_model(tmp_path / "other", seed=seed)
    assert _digest(out)["model.safetensors"] != _digest(tiny_model)["model.safetensors"]
    assert _digest(out)["tokenizer.json"] == _digest(tiny_model)["tokenizer.json"]
