"""Image checks and content hashes (with a progress bar): a missing or unreadable image is an item error."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from tools.data.errors import Rejects
from tools.data.items import Item, item_error, sha256_file


def _image_sha256(path: Path) -> str:
    """sha256 of the file, after PIL has checked that it is a readable image; raises ValueError otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ValueError(f"image {path} does not exist")
    try:
        digest = sha256_file(path)
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ValueError(f"image {path} is not a readable image ({exc})") from exc
    return digest


def hash_images(items: list[Item], rejects: Rejects) -> list[Item]:
    """Fill ``item.sha256``; items whose image is missing or unreadable go to ``rejects`` (or raise)."""
    digests: dict[Path, str | ValueError] = {}
    for path in tqdm(sorted({item.image for item in items}), desc="hashing images", unit="img"):
        try:
            digests[path] = _image_sha256(path)
        except ValueError as exc:
            digests[path] = exc
    kept = []
    for item in items:
        digest = digests[item.image]
        if isinstance(digest, ValueError):
            rejects.add(item_error(item, str(digest)))
            continue
        item.sha256 = digest
        kept.append(item)
    return kept
