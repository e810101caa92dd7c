"""Output formats, all built from the same items with the one prompt builder (tools/common/prompt.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.common.prompt import build_prompt, with_image_token
from tools.data.items import Item

TARGET_STYLES = ("think_answer", "answer")  # checked by convert_pathmmu


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def prompt_of(item: Item) -> str:
    """The user turn: one ``<image>`` then the shared prompt (question, lettered options, instruction)."""
    return with_image_token(build_prompt(item.question, item.options))


def target_of(item: Item, style: str) -> str:
    """The SFT target: ``<think>{explanation}</think><answer>C) text</answer>`` or the answer alone."""
    answer = f"<answer>{item.answer}</answer>"
    return f"<think>{item.explanation.strip()}</think>{answer}" if style == "think_answer" else answer


def sharegpt_row(item: Item, style: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": prompt_of(item)},
            {"role": "assistant", "content": target_of(item, style)},
        ],
        "images": [str(item.image)],
    }


def sharegpt_entry(split: str) -> dict[str, Any]:
    """The ``dataset_info.json`` entry of ``llamafactory/<split>.json`` (LLaMA-Factory's sharegpt format)."""
    return {
        "file_name": f"{split}.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    }


def write_llamafactory(out: Path, splits: Mapping[str, Sequence[Item]], style: str, prefix: str) -> None:
    """``out/llamafactory/<split>.json`` (sharegpt) and ``dataset_info.json`` entries ``<prefix>_<split>``."""
    for name, items in splits.items():
        write_json(out / "llamafactory" / f"{name}.json", [sharegpt_row(item, style) for item in items])
    info = {f"{prefix}_{name}": sharegpt_entry(name) for name in splits}
    write_json(out / "llamafactory" / "dataset_info.json", info)


def easyr1_row(item: Item) -> dict[str, Any]:
    """EasyR1 passes a reward function only the response and ``answer``: pack what the judge needs into it."""
    answer = {
        "ground_truth": item.answer,
        "question": item.question,
        "options": item.options,
        "image": str(item.image),
        "id": item.id,
    }
    return {
        "problem": prompt_of(item),
        "images": [str(item.image)],
        "answer": json.dumps(answer, ensure_ascii=False),
    }


def eval_row(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "subset": item.subset,
        "image": str(item.image),
        "question": item.question,
        "options": item.options,
        "answer": item.answer,
    }


def manifest_entry(item: Item) -> dict[str, str]:
    return {
        "id": item.id,
        "image": item.image_ref,
        "sha256": item.sha256,
        "subset": item.subset,
        "question": item.question,
    }
