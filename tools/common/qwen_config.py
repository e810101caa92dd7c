"""Qwen2.5-VL ``config.json`` in the flat layout of Qwen's own checkpoints.

transformers 4.57 saves Qwen2.5-VL configs with a nested ``text_config``; such a config reloads with
``model_type`` ``qwen2_5_vl_text`` in places that read the text config, and LLaMA-Factory then silently
ignores ``freeze_vision_tower``. Every model this project writes (the tiny model, every stage export) goes
through ``write_flat_config`` so all checkpoints look like the ones Qwen publishes.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_TYPE = "qwen2_5_vl"
ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"
_NESTED_ONLY_KEYS = {"model_type", "architectures", "_name_or_path", "transformers_version"}


def write_flat_config(model_dir: Path) -> None:
    """Rewrite ``model_dir/config.json`` in the flat layout: ``text_config`` keys moved to the top level
    (top-level values win), the model type fixed."""
    path = Path(model_dir) / "config.json"
    flat = json.loads(path.read_text(encoding="utf-8"))
    for key, value in (flat.pop("text_config", None) or {}).items():
        if key not in _NESTED_ONLY_KEYS:
            flat.setdefault(key, value)
    flat |= {"model_type": MODEL_TYPE, "architectures": [ARCHITECTURE]}
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n", encoding="utf-8")
