"""Validation of a stage's ``llamafactory:`` section against LLaMA-Factory 0.9.5's own argument dataclasses.

``HfArgumentParser.parse_dict`` with extra keys refused, as ``llamafactory-cli`` does, plus the value types
(``parse_dict`` neither converts nor checks them), the template, the stage and the DeepSpeed file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import types
import typing
from typing import Any

from tools.common.paths import repo_file
from tools.recipe.checks import quiet
from tools.recipe.checks.ranges import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    PIXELS,
    POSITIVE,
    Range,
    check,
    ordered,
)

# Keys that depend on the machine running validation, not on the recipe: LLaMA-Factory/transformers refuse
# bf16 on a CPU and turn DeepSpeed on process-wide when they parse it, so they are checked on their own.
_LF_HARDWARE_KEYS = ("bf16", "fp16", "tf32", "deepspeed")
# The range of every numeric key a recipe sets (tests/test_bad_inputs.py keeps this in step with recipes/).
RANGES = {
    "learning_rate": POSITIVE,
    "num_train_epochs": POSITIVE,
    "max_steps": Range(1, integer=True, unset=(-1,), note="-1: train num_train_epochs"),
    "per_device_*_batch_size": COUNT,
    "gradient_accumulation_steps": COUNT,
    "cutoff_len": COUNT,
    "save_steps": POSITIVE,
    "logging_steps": POSITIVE,
    "eval_steps": POSITIVE,
    "save_total_limit": COUNT,
    "seed": NON_NEGATIVE_INT,
    "warmup_ratio": FRACTION,
    "warmup_steps": NON_NEGATIVE_INT,
    "weight_decay": NON_NEGATIVE,
    "max_grad_norm": Range(0, note="0: no clipping"),
    "lora_rank": COUNT,
    "lora_alpha": POSITIVE,
    "lora_dropout": Range(0, 1),
    "dataloader_num_workers": NON_NEGATIVE_INT,
    "preprocessing_num_workers": COUNT,
    "ddp_timeout": COUNT,
    "image_max_pixels": PIXELS,
    "image_min_pixels": PIXELS,
}


def validate(args: dict[str, Any]) -> list[str]:
    """LLaMA-Factory 0.9.5 train arguments: its own dataclasses, extra keys refused (as llamafactory-cli)."""
    from llamafactory.hparams.parser import _TRAIN_ARGS
    from transformers import HfArgumentParser

    known = {f.name for cls in _TRAIN_ARGS for f in dataclasses.fields(cls) if f.init}
    problems = [
        f"{key}: unknown key (not a LLaMA-Factory 0.9.5 train argument)" for key in args if key not in known
    ]
    if problems:
        return problems
    problems = _check_types(args, _TRAIN_ARGS)
    problems += check(args, RANGES) + ordered(args, "image_min_pixels", "image_max_pixels")
    problems += _check_deepspeed(args.get("deepspeed"))
    from llamafactory.data.template import TEMPLATES

    if args.get("template") not in TEMPLATES:
        problems.append(
            f"template: {args.get('template')!r} is not a LLaMA-Factory template (e.g. 'qwen2_vl')"
        )
    if args.get("stage") != "sft":
        problems.append(
            f"stage: {args.get('stage')!r}, expected 'sft' (SFT stages only run on LLaMA-Factory)"
        )
    parse_args = {k: v for k, v in args.items() if k not in _LF_HARDWARE_KEYS}
    parse_args.setdefault("output_dir", "runs/_validate")  # filled in by the runner
    try:
        with quiet():
            HfArgumentParser(_TRAIN_ARGS).parse_dict(parse_args, allow_extra_keys=False)
    except (ValueError, TypeError, AssertionError) as exc:
        problems.append(f"LLaMA-Factory rejects the arguments: {str(exc).strip().splitlines()[0]}")
    return problems


def _check_deepspeed(path: Any) -> list[str]:
    if path is None:
        return []
    file = repo_file(path)
    try:
        ds = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        return [f"deepspeed: {path} is not a readable JSON file ({exc})"]
    if not isinstance(ds.get("zero_optimization"), dict):
        return [f"deepspeed: {path} has no zero_optimization section"]
    return []


def _check_types(args: dict[str, Any], classes: list[type]) -> list[str]:
    """Value types against the dataclass annotations (parse_dict itself does not convert or check them)."""
    hints: dict[str, Any] = {}
    for cls in classes:
        hints.update({f.name: f.type for f in dataclasses.fields(cls)})
        with contextlib.suppress(Exception):
            hints.update(typing.get_type_hints(cls))
    problems = []
    for key, value in args.items():
        if key in hints and value is not None and not _matches(value, hints[key]):
            problems.append(f"{key}: {value!r} does not match type {_type_name(hints[key])}")
    return problems


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, str) or origin in (dict, list, tuple) or hint in (dict, list):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint) if arg is not type(None))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and issubclass(hint, str):  # str-valued enums accept their values
        return isinstance(value, str)
    return True  # other annotations: left to the engine


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
