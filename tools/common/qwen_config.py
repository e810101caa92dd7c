"""Qwen2.5-VL ``config.json`` in the flat layout of Qwen's own checkpoints.

transformers 4.57 saves Qwen2.5-VL configs with a nested ``text_config``; such a config reloads with
``model_type`` ``qwen2_5_vl_text`` in places that read the text config, and LLaMA-Factory then silently
ignores ``freeze_vision_tower``. Every model this project writes (the tiny model, every stage export) goes
through ``write_flat_config`` so all checkpoints look like the ones Qwen publishes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_TYPE = "qwen2_5_vl"
ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"
_NESTED_ONLY_KEYS = {"model_type", "architectures", "_name_or_path", "transformers_version"}


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """Move ``text_config`` keys to the top level (top-level values win) and fix the model type."""
    flat = dict(config)
    text = flat.pop("text_config", None) or {}
    for key, value in text.items():
        if key not in _NESTED_ONLY_KEYS:
            flat.setdefault(key, value)
    flat["model_type"] = MODEL_TYPE
    flat["architectures"] = [ARCHITECTURE]
    return dict(sorted(flat.items()))


def write_flat_config(model_dir: Path) -> dict[str, Any]:
    """Rewrite ``model_dir/config.json`` in the flat layout; returns the written dict."""
    path = Path(model_dir) / "config.json"
    flat = flatten(json.loads(path.read_text(encoding="utf-8")))
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return flat
