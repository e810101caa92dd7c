"""The ``openai`` evaluation backend: any OpenAI-compatible chat endpoint with images (GPT-4o, Gemini
through Google's OpenAI-compatible endpoint, a ``vllm serve``), on the judge's chat helper.

Requests go through ``rewards.judge.chat`` (the ``openai`` SDK): one client per batch, at most
``--concurrency`` in flight, the SDK's retries with backoff / Retry-After and its per-attempt time limit, the
key read from the environment variable named by ``--api-key-env`` only. Each item is one user message, the
``build_prompt`` text and the image file as a data URL (as the judge sends it, unresized: the endpoint
applies its own image limits), at temperature 0 with ``max_tokens = --max-new-tokens``. ``output_tokens``
is the endpoint's ``completion_tokens``. An item that gets no reply after its retries is not written, so
the evaluation stops with a message and a rerun resumes it (``items.jsonl`` is the cache: answered items
are never requested again). Calls, retries, tokens, cost (``--usd-per-mtok-*``) and failure reasons of
the run go into ``summary.json`` as ``api_usage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rewards.judge.chat import ChatFailure, chat_client, complete, load_image, run_sync, user_messages
from rewards.judge.config import credentials_in_url
from rewards.judge.items import JudgeUsage
from tools.evaluation.generation import Generation, Request
from tools.evaluation.settings import EvalSettings

if TYPE_CHECKING:
    import openai


class OpenAIBackend:
    """Answers batches of requests concurrently through ``rewards.judge.chat``."""

    def __init__(self, model: str, settings: EvalSettings) -> None:
        if credentials_in_url(settings.base_url):
            raise SystemExit(
                "--base-url carries a credential (user:password@ or a key in the query): put the key in "
                "an environment variable and name it with --api-key-env"
            )
        self.model_name = model
        self.settings = settings
        self.usage = JudgeUsage()

    def render(self, prompt: str) -> str:
        """The text the endpoint receives (it applies its own chat template)."""
        return prompt

    def generate(self, requests: Sequence[Request]) -> list[Generation | None]:
        """One reply per request, in order; ``None`` where no reply came after the retries."""
        return run_sync(self._generate(requests))

    async def _generate(self, requests: Sequence[Request]) -> list[Generation | None]:
        settings = self.settings
        slots = asyncio.Semaphore(settings.concurrency)
        async with chat_client(
            settings.base_url,
            settings.api_key_env,
            timeout_s=settings.request_timeout,
            max_retries=settings.max_retries,
            concurrency=settings.concurrency,
            counters=self.usage,
        ) as client:
            return list(await asyncio.gather(*(self._one(client, slots, request) for request in requests)))

    async def _one(
        self, client: openai.AsyncOpenAI, slots: asyncio.Semaphore, request: Request
    ) -> Generation | None:
        messages = user_messages(request.prompt, (load_image(request.image).data_url,))
        self.usage.items += 1
        try:
            async with slots:
                reply = await complete(
                    client,
                    model=self.model_name,
                    messages=messages,
                    temperature=0.0,
                    max_tokens=self.settings.max_new_tokens,
                )
        except ChatFailure as error:
            self.usage.failures[error.reason] += 1
            return None
        self.usage.prompt_tokens += reply.prompt_tokens
        self.usage.completion_tokens += reply.completion_tokens
        if reply.text is None:
            self.usage.failures["no_text"] += 1
            return None
        return Generation(reply.text, reply.completion_tokens)

    def accounting(self) -> dict[str, Any]:
        """This run's calls, retries, tokens, cost and failure reasons."""
        usage, settings = self.usage, self.settings
        cost = (
            usage.prompt_tokens * settings.usd_per_mtok_prompt
            + usage.completion_tokens * settings.usd_per_mtok_completion
        ) / 1e6
        return {
            "items": usage.items,
            "calls": usage.calls,
            "retries": usage.retries,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": cost,
            "failures": dict(usage.failures),
        }

    def close(self) -> None:
        """Nothing to close: each batch closes its own client."""
