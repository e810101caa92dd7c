"""The GRPO stages' data as EasyR1 reads it: our EasyR1 JSONL, images resized into the pixel budget, and
the prompt length (image tokens included) that ``data.filter_overlong_prompts`` compares with
``data.max_prompt_length``. The TRL engine trains on these rows; the EasyR1 engine counts what EasyR1 will
drop silently, before it starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.common.pixels import load_image
from tools.common.prompt import IMAGE_TOKEN


def load_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """``data.train_files`` as rows: ``prompt`` (a conversation, the text without ``<image>``), ``image``
    (PIL, RGB, resized) and ``answer`` (the JSON string the reward functions read)."""
    path = Path(str(data["train_files"]).split("@", 1)[0])
    if not path.is_file():
        raise FileNotFoundError(f"easyr1.data.train_files: {path} not found (written by `pathvlm data`)")
    image_dir = Path(data["image_dir"]) if data.get("image_dir") else None
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        problem, images = item[data.get("prompt_key", "problem")], item[data.get("image_key", "images")]
        if not problem.startswith(IMAGE_TOKEN) or problem.count(IMAGE_TOKEN) != 1 or len(images) != 1:
            raise ValueError(
                f"{path}:{number}: expected a prompt that starts with its one {IMAGE_TOKEN} and one image, "
                f"got {problem.count(IMAGE_TOKEN)} {IMAGE_TOKEN} and {len(images)} images"
            )
        file = image_dir / images[0] if image_dir else images[0]
        image = load_image(file, data.get("min_pixels"), data.get("max_pixels"))
        text = problem[len(IMAGE_TOKEN) :]  # EasyR1 splits the prompt at <image>: image first, then the text
        prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        rows.append({"prompt": prompt, "image": image, "answer": item[data.get("answer_key", "answer")]})
    return rows


def prompt_length(processor: Any, row: dict[str, Any]) -> int:
    """Tokens of the prompt as the model sees it (chat template, image tokens), as EasyR1 counts them."""
    text = processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[row["image"]], text=[text], add_special_tokens=False, return_tensors="pt")
    return int(inputs["input_ids"].shape[-1])


def overlong_line(dropped: int, total: int, max_length: int) -> str:
    return (
        f"filter_overlong_prompts: {dropped} of {total} prompts are longer than "
        f"max_prompt_length={max_length} tokens and are dropped"
    )


def drop_overlong(rows: list[dict[str, Any]], processor: Any, max_length: int) -> list[dict[str, Any]]:
    """The rows whose prompt fits ``max_length`` tokens; prints how many were dropped."""
    from tqdm import tqdm

    kept = [row for row in tqdm(rows, desc="prompt lengths") if prompt_length(processor, row) <= max_length]
    print(overlong_line(len(rows) - len(kept), len(rows), max_length), flush=True)
    if not kept:
        raise ValueError(f"every prompt is longer than data.max_prompt_length={max_length}")
    return kept


def count_overlong(data: dict[str, Any], model: str) -> tuple[int, int, int]:
    """(prompts longer than ``data.max_prompt_length``, prompts, longest) of ``data.train_files``, counted
    with ``model``'s own processor as EasyR1's ``filter_overlong_prompts`` counts them."""
    from tqdm import tqdm
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(model)
    lengths = [prompt_length(processor, row) for row in tqdm(load_rows(data), desc="prompt lengths")]
    return sum(n > data["max_prompt_length"] for n in lengths), len(lengths), max(lengths, default=0)
