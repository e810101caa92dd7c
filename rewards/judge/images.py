"""Images for the judge: sha256 of the file (for the cache key) and a data URL the OpenAI API accepts."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

_IMAGE_MIME = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


@dataclass(frozen=True)
class EncodedImage:
    sha256: str
    data_url: str


def load_image(path: str | Path) -> EncodedImage:
    """The file's sha256 and a base64 data URL (PNG/JPEG/GIF/WebP as is, other formats converted to PNG)."""
    return encode_image(Path(path).read_bytes())


def encode_image(data: bytes) -> EncodedImage:
    """``load_image`` of an image's bytes."""
    digest = hashlib.sha256(data).hexdigest()
    mime = next((mime for magic, mime in _IMAGE_MIME if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        from PIL import Image

        buffer = io.BytesIO()
        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB").save(buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    return EncodedImage(digest, f"data:{mime};base64,{base64.b64encode(data).decode()}")
