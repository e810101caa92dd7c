"""Chat completions with images on the ``openai`` SDK, for the judge and the API evaluation backend.

One ``AsyncOpenAI`` per batch, with the SDK's own retries (``max_retries``: 408/409/429/5xx, timeouts and
dropped connections, Retry-After honoured, else exponential backoff from 0.5 s up to 8 s) and timeouts
(``timeout_s`` per attempt); the caller bounds concurrency with a semaphore and the batch with a deadline.
A client is bound to the event loop it first ran on (httpx's connection pool), so each batch opens its own
inside its own ``asyncio.run`` (``run_sync``); a batch's requests share its connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import logging
import os
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rewards.judge.items import JudgeUsage

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)
T = TypeVar("T")
_IMAGE_MIME = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


@dataclass(frozen=True)
class ChatReply:
    """The first choice's text (None when the endpoint sent none) and the tokens it billed."""

    text: str | None
    prompt_tokens: int
    completion_tokens: int


class ChatFailure(Exception):
    """No reply after the SDK's retries; ``reason`` names it in the counters (``http_429``, ``timeout``,
    ``connection``, ``empty_choices``, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EncodedImage:
    sha256: str
    data_url: str


def load_image(source: str | Path | bytes) -> EncodedImage:
    """An image file's (or its bytes') sha256 and a base64 data URL (PNG/JPEG/GIF/WebP as is, other formats
    converted to PNG)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    mime = next((mime for magic, mime in _IMAGE_MIME if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        from PIL import Image  # deferred: only formats the API does not take need it

        buffer = io.BytesIO()
        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB").save(buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    return EncodedImage(digest, f"data:{mime};base64,{base64.b64encode(data).decode()}")


def user_messages(text: str, image_urls: tuple[str, ...], system: str | None = None) -> list[dict[str, Any]]:
    """An optional system message, then one user message with the text and the images (data or http URLs)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    head = [{"role": "system", "content": system}] if system is not None else []
    return [*head, {"role": "user", "content": content}]


@contextlib.asynccontextmanager
async def chat_client(
    base_url: str,
    api_key_env: str | None,
    *,
    timeout_s: float,
    max_retries: int,
    concurrency: int,
    counters: JudgeUsage,
) -> AsyncIterator[openai.AsyncOpenAI]:
    """An ``AsyncOpenAI`` for one batch that counts every HTTP attempt (and retry) in ``counters``; its pool
    holds ``concurrency`` connections (httpcore scans its whole pool per request: 1,000 by default). The key
    is read from ``os.environ[api_key_env]`` here and never stored elsewhere; with ``api_key_env`` None (an
    endpoint without authentication) or an unset variable no real key is sent."""
    import httpx  # deferred with openai: ~1 s to import, and only a judge or an API evaluation needs them
    import openai

    key = os.environ.get(api_key_env) if api_key_env is not None else None
    if not key and api_key_env is not None:
        logger.warning("judge: variable %s is not set; no API key sent", api_key_env)
    if logging.getLogger("httpx").level == logging.NOTSET:  # one INFO line per request otherwise
        logging.getLogger("httpx").setLevel(logging.WARNING)

    async def count(request: Any) -> None:
        counters.calls += 1
        counters.retries += request.headers.get("x-stainless-retry-count", "0") != "0"

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    http = openai.DefaultAsyncHttpxClient(limits=limits, event_hooks={"request": [count]})
    async with openai.AsyncOpenAI(
        base_url=base_url,
        api_key=key or "EMPTY",
        timeout=timeout_s,
        max_retries=max_retries,
        http_client=http,
    ) as client:
        yield client


async def complete(client: openai.AsyncOpenAI, **create: Any) -> ChatReply:
    """``client.chat.completions.create(**create)``'s first choice; ChatFailure naming why there is none."""
    import openai  # deferred as in chat_client

    try:
        completion = await client.chat.completions.create(**create)
    except openai.APITimeoutError:
        raise ChatFailure("timeout") from None
    except openai.APIConnectionError:
        raise ChatFailure("connection") from None
    except openai.APIStatusError as error:
        raise ChatFailure(f"http_{error.status_code}") from None
    except ValueError:  # the SDK's json.loads of a JSON-typed body
        raise ChatFailure("not_json") from None
    # The SDK builds the reply without validating it: a body of another type or shape arrives as is.
    if not isinstance(completion, openai.types.chat.ChatCompletion):
        raise ChatFailure("not_a_completion")
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise ChatFailure("empty_choices")
    text = getattr(getattr(choices[0], "message", None), "content", None)
    usage = getattr(completion, "usage", None)
    tokens = [getattr(usage, name, 0) for name in ("prompt_tokens", "completion_tokens")]
    tokens = [value if isinstance(value, int) and not isinstance(value, bool) else 0 for value in tokens]
    return ChatReply(text if isinstance(text, str) else None, *tokens)


def run_sync(batch: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(batch)``; on a worker thread when this thread already runs an event loop (a trainer
    calling the reward function from async code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(batch)
    with ThreadPoolExecutor(1, thread_name_prefix="pathvlm-chat") as pool:
        return pool.submit(asyncio.run, batch).result()
