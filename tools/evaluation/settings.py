"""How a model is evaluated: ``EvalSettings``, built once from the command line, a recipe or a run's config.

The image limits follow training: a stage's resolved config sets them (``easyr1.data.*_pixels`` or
``llamafactory.image_*_pixels``, ``training_settings``), a flag overrides them, else the processor's own
limits apply.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from tools.evaluation.generation import DEFAULT_BATCH_SIZE

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# What evaluation takes over from the training configs: the base model and the image size limits.
TRAINING_KEYS = {
    "base_model": ("base_model",),
    "max_pixels": ("easyr1.data.max_pixels", "llamafactory.image_max_pixels"),
    "min_pixels": ("easyr1.data.min_pixels", "llamafactory.image_min_pixels"),
}


@dataclass(frozen=True)
class EvalSettings:
    """Backend, decoding and image settings of an evaluation (the flags of ``pathvlm eval``)."""

    backend: str = "hf"
    max_new_tokens: int = 1024
    max_pixels: int | None = None
    min_pixels: int | None = None
    dtype: str = "auto"
    batch_size: int | None = None
    max_prompt_length: int = 1024  # vllm: max_model_len = this + max_new_tokens
    tensor_parallel_size: int = 1
    samples: int = 1  # >= 2: pass@k at temperature (default 1)
    temperature: float | None = None
    seed: int = 0
    # --backend openai
    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 16
    max_retries: int = 4
    request_timeout: float = 120.0
    usd_per_mtok_prompt: float = 0.0
    usd_per_mtok_completion: float = 0.0

    def __post_init__(self) -> None:
        if self.api and (self.max_pixels or self.min_pixels):
            raise SystemExit(
                "--backend openai sends images as they are: --max-pixels / --min-pixels do not apply"
            )
        if self.samples == 1:
            if self.temperature not in (None, 0.0):
                raise SystemExit("--temperature samples answers: pass --samples N (N >= 2) for pass@k")
            return
        if self.api:
            raise SystemExit("--samples (pass@k) evaluates local models: use --backend hf or vllm")
        if self.temperature is not None and self.temperature <= 0:
            raise SystemExit(f"--samples {self.samples} needs --temperature > 0 (got {self.temperature})")

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides: Any) -> EvalSettings:
        """The settings among ``args`` (a parser's flags of the same names), then ``overrides``."""
        given = {
            f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None
        }
        return cls(**{**given, **overrides})

    @property
    def api(self) -> bool:
        return self.backend == "openai"

    @property
    def sampling(self) -> dict[str, Any] | None:
        """``{samples, temperature, seed}`` of a pass@k evaluation, None for greedy."""
        if self.samples == 1:
            return None
        temperature = 1.0 if self.temperature is None else self.temperature
        return {"samples": self.samples, "temperature": temperature, "seed": self.seed}

    @property
    def batch(self) -> int:
        """Items per generate call."""
        return self.batch_size or DEFAULT_BATCH_SIZE[self.backend]

    def with_training_limits(self, trained: Mapping[str, Any]) -> EvalSettings:
        """These settings with the image limits of ``training_settings`` where no flag set them."""
        if self.api:
            return self
        return replace(
            self,
            max_pixels=self.max_pixels or trained.get("max_pixels"),
            min_pixels=self.min_pixels or trained.get("min_pixels"),
        )

    def dataset(self, stem: str) -> str:
        """The folder name of data file ``stem``: itself, or ``test-samples8-t1`` beside it for pass@k."""
        sampling = self.sampling
        if sampling is None:
            return stem
        return f"{stem}-samples{sampling['samples']}-t{sampling['temperature']:g}"

    def decoding(self) -> dict[str, Any]:
        """The decoding and image settings in an evaluation folder's ``config.json`` (its identity)."""
        sampling = self.sampling
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": 0.0 if sampling is None else sampling["temperature"],
            **(sampling or {}),
            "max_pixels": self.max_pixels,
            "min_pixels": self.min_pixels,
            "dtype": self.dtype,
            **({"base_url": self.base_url} if self.api else {}),
        }


def training_settings(configs: Sequence[Path | Mapping[str, Any]], hint: str) -> dict[str, Any]:
    """``base_model``, ``max_pixels``, ``min_pixels`` as resolved stage configs (files, composed recipes or
    resolved dicts) set them (absent if unset); configs that disagree are an error naming ``hint`` (the
    flag that settles it)."""
    values: dict[str, set[Any]] = defaultdict(set)
    for source in configs:
        config = OmegaConf.load(source) if isinstance(source, Path) else OmegaConf.create(source)
        for key, selectors in TRAINING_KEYS.items():
            for selector in selectors:
                value = OmegaConf.select(config, selector)
                if value is not None:
                    values[key].add(value)
    conflicts = {key: sorted(map(str, found)) for key, found in values.items() if len(found) > 1}
    if conflicts:
        paths = ", ".join(map(str, configs))
        raise SystemExit(f"stage configs disagree on {conflicts} ({paths}); pass {hint}")
    return {key: found.pop() for key, found in values.items()}
