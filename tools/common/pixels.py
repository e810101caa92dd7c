"""The one image fitting of every path: an image resized into a pixel budget as EasyR1's dataset does it.

Training (the TRL engine, the prompt-length count before an EasyR1 stage) and evaluation (the hf and vllm
backends) both call ``load_image``, with the ``min_pixels`` / ``max_pixels`` of the recipe (``vars`` in
``recipes/stages/_common.yaml``), and hand the result to the model's processor with the processor's own
default limits, as EasyR1's dataset and LLaMA-Factory's ``mm_plugin`` do: the budget is applied here, once.
"""

from __future__ import annotations

import math
from typing import Any


def fit_pixels(image: Any, min_pixels: int | None, max_pixels: int | None) -> Any:
    """A PIL image resized into [min_pixels, max_pixels], keeping its aspect ratio (a sqrt factor, as EasyR1's
    ``process_image``): first capped at ``max_pixels``, then raised to ``min_pixels``; unset bounds: none."""
    for bound, outside in ((max_pixels, lambda p, b: p > b), (min_pixels, lambda p, b: p < b)):
        pixels = image.width * image.height
        if bound and outside(pixels, bound):
            factor = math.sqrt(bound / pixels)
            image = image.resize((int(image.width * factor), int(image.height * factor)))
    return image


def load_image(path: Any, min_pixels: int | None, max_pixels: int | None) -> Any:
    """The image file as EasyR1's dataset feeds it to the policy: fitted (``fit_pixels``), then RGB."""
    from PIL import Image

    with Image.open(path) as opened:
        image = fit_pixels(opened.copy(), min_pixels, max_pixels)
    return image if image.mode == "RGB" else image.convert("RGB")
