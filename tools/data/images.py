"""Image checks and content hashes (with a progress bar): a missing or undecodable image is an item error.

Every image is decoded in full once (``Image.verify`` does not decode JPEG data, so a truncated JPEG would
pass and kill a later training or evaluation run), in a thread pool (PIL decodes without the GIL).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from tools.common.manifest import sha256_file
from tools.data.errors import Rejects
from tools.data.items import Item, item_error

# Pixel formats that the engines' ``convert("RGB")`` clips to white or black instead of scaling.
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
# The Qwen2-VL processor's limit (transformers ``smart_resize``: "absolute aspect ratio must be smaller than
# 200"), which it applies to every image at training and evaluation time.
MAX_ASPECT_RATIO = 200


def _image_sha256(path: Path) -> str:
    """sha256 of the file, after PIL has decoded all of it as an 8-bit image; raises ValueError otherwise."""
    from PIL import Image

    if not path.is_file():
        raise ValueError(f"image {path} does not exist")
    try:
        digest = sha256_file(path)
        with Image.open(path) as image:
            mode, (width, height) = image.mode, image.size
            if mode not in WIDE_MODES:
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"image {path} is too large to decode safely ({exc})") from exc
    except Exception as exc:  # whatever PIL raises on a bad file (OSError, SyntaxError, ...) names the file
        raise ValueError(f"image {path} is not a readable image ({exc})") from exc
    if mode in WIDE_MODES:
        raise ValueError(
            f"image {path} has {mode} pixels (16/32-bit), which RGB conversion turns white: "
            "convert it to 8 bits per channel"
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ValueError(
            f"image {path} is {width}x{height}: an aspect ratio above {MAX_ASPECT_RATIO}, which the "
            "Qwen2.5-VL processor refuses"
        )
    return digest


def _checked(path: Path) -> str | ValueError:
    try:
        return _image_sha256(path)
    except ValueError as exc:
        return exc


def hash_images(items: list[Item], rejects: Rejects) -> list[Item]:
    """Fill ``item.sha256``; items whose image is missing or unreadable go to ``rejects`` (or raise)."""
    from PIL import Image

    paths = sorted({item.image for item in items})
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        results = list(tqdm(pool.map(_checked, paths), total=len(paths), desc="checking images", unit="img"))
    digests = dict(zip(paths, results, strict=True))
    kept = []
    for item in items:
        digest = digests[item.image]
        if isinstance(digest, ValueError):
            rejects.add(item_error(item, str(digest)))
            continue
        item.sha256 = digest
        kept.append(item)
    return kept
