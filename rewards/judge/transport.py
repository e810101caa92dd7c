"""The transport interface: one chat completion (text + images in, text out) against some backend.

A backend is one class with ``complete`` and ``aclose`` (``rewards/judge/openai_transport.py`` speaks the
OpenAI chat-completions API; another API is one new file). Retries, backoff, concurrency, the per-request
and per-batch time limits live in ``rewards.judge.client.ChatClient``, above every transport.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion: an optional system text, a user text and images (data URLs or http URLs)."""

    model: str
    user: str
    images: tuple[str, ...] = ()
    system: str | None = None
    temperature: float = 0.0
    max_tokens: int = 256


@dataclass(frozen=True)
class ChatReply:
    """The reply text (None when the backend sent none) and the tokens it billed."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TransportError(Exception):
    """A failed attempt: ``reason`` names it in the counters (``http_429``, ``timeout``, ``connection``,
    ``not_a_completion``, ...); ``retryable`` says whether another attempt may succeed; ``retry_after`` is
    the server's requested wait in seconds, if it gave one."""

    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Transport(Protocol):
    """A chat backend: ``complete`` raises TransportError for every failure it can name."""

    async def complete(self, request: ChatRequest, timeout: float) -> ChatReply: ...

    async def aclose(self) -> None: ...


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date); None if absent."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            date = parsedate_tz(value)
            if date is not None:
                return max(0.0, mktime_tz(date) - time.time())
    return None
