"""Evaluation sees the images training saw: over random sizes, the image-token count of LLaMA-Factory's
qwen2_vl plugin (SFT), EasyR1's dataset code (GRPO) and our HF evaluation backend's inputs are equal, and the
vLLM backend is given the same image with the processor's default limits.

Both engines shrink an image into the pixel budget first, then run the processor with its own limits (which
round each side up to a multiple of 28); a processor given ``max_pixels`` itself rounds down where rounding
up would cross it (731×548: 520 image tokens in training, 494 with the old evaluation inputs).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tools.evaluation.eval_backends import HFBackend, VLLMBackend
from tools.evaluation.generation import Request
from tools.evaluation.settings import EvalSettings

MAX_PIXELS, MIN_PIXELS = 401_408, 3_136  # recipes/stages/_common.yaml vars
SETTINGS = EvalSettings(max_new_tokens=4, max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS)
QWEN_LIMITS = {"min_pixels": 3_136, "max_pixels": 12_845_056}  # Qwen2.5-VL-7B-Instruct's preprocessor_config
PROMPT = "Which tissue is shown?"


@pytest.fixture(scope="module")
def model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with the real Qwen2.5-VL processor limits (the tiny one caps images at 16 tokens)."""
    model = tmp_path_factory.mktemp("qwen-limits") / "model"
    shutil.copytree(tiny_model, model)
    config_file = model / "preprocessor_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config |= {**QWEN_LIMITS, "size": {"shortest_edge": 3_136, "longest_edge": 12_845_056}}
    config_file.write_text(json.dumps(config), encoding="utf-8")
    return model


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """50 random sizes (seeded) around the budget, and the issue's 731×548."""
    rng, folder = random.Random(0), tmp_path_factory.mktemp("sizes")
    sizes = [(731, 548)] + [(rng.randint(200, 1600), rng.randint(200, 1600)) for _ in range(49)]
    paths = []
    for width, height in sizes:
        paths.append(folder / f"{width}x{height}.png")
        Image.new("RGB", (width, height), (200, 120, 160)).save(paths[-1])
    return paths


def image_token_count(processor, input_ids) -> int:
    return int((input_ids == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum())


def llamafactory_tokens(processor, path: Path) -> int:
    """LLaMA-Factory's SFT path: the qwen2_vl template's plugin expands ``<image>`` into its image tokens."""
    from llamafactory.data.template import TEMPLATES

    processor.image_max_pixels, processor.image_min_pixels = MAX_PIXELS, MIN_PIXELS  # as its model loader
    messages = [{"role": "user", "content": f"<image>{PROMPT}"}]
    plugin = TEMPLATES["qwen2_vl"].mm_plugin
    text = plugin.process_messages(messages, [str(path)], [], [], processor)[0]["content"]
    return text.count("<|image_pad|>")


def easyr1_tokens(processor, path: Path) -> int:
    """EasyR1's GRPO path (``RLHFDataset``): ``process_image``, then the processor as it was loaded."""
    from verl.utils.dataset import process_image

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image = process_image(str(path), MIN_PIXELS, MAX_PIXELS)
    inputs = processor([image], [prompt], add_special_tokens=False, return_tensors="pt")
    return image_token_count(processor, inputs["input_ids"])


def test_evaluation_images_have_the_training_image_tokens(
    model: Path, images: list[Path], gpu_stubs: None
) -> None:
    import vllm
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(model)
    hf = HFBackend(str(model), SETTINGS)
    counts = []
    for path in images:
        inputs = hf.inputs([Request(prompt=PROMPT, image=str(path))])
        ours = image_token_count(hf.processor, inputs["input_ids"])
        counts.append((path.stem, llamafactory_tokens(processor, path), easyr1_tokens(processor, path), ours))
    assert counts[0] == ("731x548", 520, 520, 520)
    assert [c for c in counts if len(set(c[1:])) > 1] == []
    assert len({c[3] for c in counts}) > 10  # the sizes do span many token counts

    vllm_backend = VLLMBackend(str(model), SETTINGS)
    assert vllm.CALLS[-1].get("mm_processor_kwargs") is None  # vLLM runs the processor with its defaults
    requests = [Request(prompt=PROMPT, image=str(path)) for path in images]
    prompts = vllm_backend.prompts(requests)
    assert [p["prompt"] for p in prompts] == [hf.render(PROMPT)] * len(images)
    assert [p["multi_modal_data"]["image"].size for p in prompts] == [hf.image(str(p)).size for p in images]
