"""The OpenAI chat-completions transport (GPT-4o, ``vllm serve``, any compatible server) on the openai SDK."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import aiohttp
import httpx
import openai

from rewards.judge.transport import ChatReply, ChatRequest, TransportError, retry_after_seconds

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_BODY_BYTES = 1 << 20  # a chat completion of a few hundred tokens is a few KB; larger bodies are refused
INLINE_JSON_BYTES = 1 << 16  # larger bodies are decoded on a worker thread, off the event loop


def chat_body(request: ChatRequest) -> dict[str, Any]:
    """The chat-completions request body: system message, then the user text and images."""
    content: list[dict[str, Any]] = [{"type": "text", "text": request.user}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in request.images]
    messages = [{"role": "system", "content": request.system}] if request.system is not None else []
    return {
        "model": request.model,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "messages": [*messages, {"role": "user", "content": content}],
    }


def reply_from_completion(data: Any) -> ChatReply:
    """The first choice's text and the usage of a chat-completion JSON body; TransportError if it is none."""
    if not isinstance(data, dict):
        raise TransportError("not_a_completion", retryable=False)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = [usage.get(name) for name in ("prompt_tokens", "completion_tokens")]
    tokens = [value if isinstance(value, int) and not isinstance(value, bool) else 0 for value in tokens]
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise TransportError("empty_choices", retryable=False)
    message = choices[0].get("message")
    text = message.get("content") if isinstance(message, dict) else None
    return ChatReply(text if isinstance(text, str) else None, tokens[0], tokens[1])


def _dropped(error: BaseException) -> bool:
    """True when aiohttp saw the connection drop (the SDK's aiohttp backend reports it as a timeout)."""
    cause = error.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
            return True
        cause = cause.__cause__
    return False


class OpenAITransport:
    """One ``AsyncOpenAI`` client on the SDK's aiohttp backend (``openai[aiohttp]``: about a third less CPU
    per request than httpx's pool at 32 in flight), the SDK's own retries off, made on first use on the
    running loop. The key is read from ``os.environ[api_key_env]`` then and never stored elsewhere; with
    ``api_key_env`` None (an endpoint without authentication) or an unset variable no real key is sent."""

    def __init__(self, base_url: str, api_key_env: str | None, concurrency: int) -> None:
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self._client: openai.AsyncOpenAI | None = None

    def _make_client(self) -> openai.AsyncOpenAI:
        key = os.environ.get(self.api_key_env) if self.api_key_env is not None else None
        if not key and self.api_key_env is not None:
            logger.warning("judge: variable %s is not set; no API key sent", self.api_key_env)
        if logging.getLogger("httpx").level == logging.NOTSET:  # one INFO line per request otherwise
            logging.getLogger("httpx").setLevel(logging.WARNING)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=key or "EMPTY",
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(limits=limits),
        )

    async def complete(self, request: ChatRequest, timeout: float) -> ChatReply:
        if self._client is None:
            self._client = self._make_client()
        try:
            # The SDK's raw POST (auth, base_url, timeouts, error classes) rather than
            # chat.completions.create, whose request transform and pydantic parsing cost ~0.5 ms CPU a
            # call; the body is checked here.
            response = await self._client.post(
                "/chat/completions",
                body=chat_body(request),
                cast_to=httpx.Response,
                options={"timeout": timeout},
            )
        except openai.APITimeoutError as error:
            raise TransportError("connection" if _dropped(error) else "timeout", retryable=True) from None
        except openai.APIConnectionError:
            raise TransportError("connection", retryable=True) from None
        except openai.APIStatusError as error:
            status = error.status_code
            retryable = status in RETRYABLE_STATUS or status >= 500
            retry_after = retry_after_seconds(error.response.headers)
            raise TransportError(f"http_{status}", retryable, retry_after) from None
        body = response.content
        if len(body) > MAX_BODY_BYTES:
            raise TransportError("body_too_large", retryable=False)
        try:
            inline = len(body) <= INLINE_JSON_BYTES
            data = json.loads(body) if inline else await asyncio.to_thread(json.loads, body)
        except ValueError:
            raise TransportError("not_json", retryable=False) from None
        return reply_from_completion(data)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
