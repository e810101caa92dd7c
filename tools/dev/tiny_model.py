"""A tiny, randomly initialised Qwen2.5-VL built offline and deterministically.

It stands in for Qwen2.5-VL-7B-Instruct in tests and the CPU smoke pipeline: same architecture class,
a real byte-level BPE tokenizer with every Qwen2.5-VL special token, the Qwen2-VL chat template, and the
Qwen2-VL image/video processors (small ``max_pixels``), so every code path that loads the real model
(LLaMA-Factory's ``qwen2_vl`` template, TRL, evaluation) loads this one unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tools.common.errors import UserError
from tools.common.prompt import ANSWER_INSTRUCTION
from tools.common.qwen_config import write_flat_config
from tools.dev.synth import ORGANS, QUESTIONS, STAINS
from tools.dev.synth import corpus as synthetic_corpus

# Qwen2.5-VL's special tokens, in the order (and relative ids) of the real tokenizer.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
BPE_VOCAB_SIZE = 1024  # learned tokens; special tokens come after them
PATCH_SIZE = 14
MERGE_SIZE = 2
MIN_PIXELS = 28 * 28 * 4  # 56 x 56: 4 patches of 28 x 28 after merging, i.e. 4 image tokens
MAX_PIXELS = 28 * 28 * 16  # 112 x 112: at most 16 image tokens

# The Qwen2-VL chat template (as shipped with Qwen2-VL / Qwen2.5-VL Instruct checkpoints).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = f"""
You are a helpful assistant. {ANSWER_INSTRUCTION}
<think> The image shows tissue with glands, nuclei and stroma. Option A is excluded, option B is excluded.
</think> <answer>A) Adenocarcinoma</answer> <answer>B) Squamous cell carcinoma</answer>
<answer>C) Normal tissue</answer> <answer>D) Lymphoma</answer> <think></think><answer></answer>
Question: What is the most likely diagnosis based on the histology shown in this image? Options:
A) B) C) D) E) F) Which of the following best describes the finding? What stain was used?
The dominant colour of the image is red, green, blue, yellow, purple, pink, orange, cyan, white, black.
Hematoxylin and eosin staining shows pleomorphic nuclei, mitotic figures, necrosis, fibrosis,
inflammation, granuloma, keratin pearls, mucin, lymphocytes, neutrophils, eosinophils, plasma cells,
epithelium, adenoma, carcinoma, sarcoma, melanoma, metastasis, benign, malignant, dysplasia, hyperplasia,
chest CT scan, skin lesion, dermoscopy, retinal OCT, diabetic retinopathy, fundus, nevus, normal, abnormal.
0 1 2 3 4 5 6 7 8 9 10 100 1000 the a an of in on to and or is are was were with without by for from this.
"""


def _corpus() -> str:
    """General pathology wording plus the synthetic datasets' own templates, so their text tokenizes short."""
    synthetic = [
        question.format(n=n, stain=stain, organ=organ)
        for question in QUESTIONS
        for n, (stain, organ) in enumerate(zip(STAINS * 2, ORGANS, strict=False))
    ]
    synthetic += synthetic_corpus()
    return _CORPUS + "\n".join(synthetic)


def _train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([_corpus()] * 8, trainer=trainer)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    return tokenizer


def _model_config(token_ids: dict[str, int], vocab_size: int):
    from transformers import Qwen2_5_VLConfig

    # head_dim = hidden_size / num_attention_heads = 16; mrope_section must sum to head_dim / 2
    return Qwen2_5_VLConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=1_000_000.0,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
        tie_word_embeddings=False,
        bos_token_id=token_ids["<|endoftext|>"],
        eos_token_id=token_ids["<|im_end|>"],
        pad_token_id=token_ids["<|endoftext|>"],
        image_token_id=token_ids["<|image_pad|>"],
        video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"],
        vision_end_token_id=token_ids["<|vision_end|>"],
        vision_token_id=token_ids["<|vision_pad|>"],
        torch_dtype="float32",
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": MERGE_SIZE,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
    )


def build_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny model, tokenizer and processors to ``out_dir``; the same seed gives identical bytes."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2TokenizerFast,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = _train_tokenizer()
    token_ids = {token: backend.token_to_id(token) for token in SPECIAL_TOKENS}
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    pixels = {
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "patch_size": PATCH_SIZE,
        "merge_size": MERGE_SIZE,
    }
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**pixels),
        chat_template=CHAT_TEMPLATE,
    )

    vocab_size = -(-len(tokenizer) // 64) * 64  # padded like Qwen's embedding tables
    config = _model_config(token_ids, vocab_size)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=token_ids["<|endoftext|>"],
        eos_token_id=[token_ids["<|im_end|>"], token_ids["<|endoftext|>"]],
        pad_token_id=token_ids["<|endoftext|>"],
        do_sample=False,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    write_flat_config(out_dir)
    _strip_volatile_fields(out_dir)
    return out_dir


def _strip_volatile_fields(out_dir: Path) -> None:
    """Drop the saving library's version from JSON files so rebuilds are byte-identical across upgrades."""
    for path in sorted(out_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "transformers_version" in data:
            del data["transformers_version"]
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tiny-model",
        help="build the tiny offline Qwen2.5-VL used by tests and the CPU smoke pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write the model to")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default: 0)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: is a file; pass a folder for the model")
    out = build_tiny_model(args.out, seed=args.seed)
    size = sum(path.stat().st_size for path in out.iterdir())
    print(f"tiny Qwen2.5-VL written to {out} ({size / 1e6:.1f} MB)")
    return 0
