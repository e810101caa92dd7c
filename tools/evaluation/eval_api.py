"""The ``openai`` evaluation backend: any OpenAI-compatible chat endpoint with images (GPT-4o, Gemini
through Google's OpenAI-compatible endpoint, a ``vllm serve``), on the judge's client code.

Requests go through ``rewards.judge``'s ``ChatClient`` over its ``OpenAITransport`` (one HTTP client for the
project): bounded concurrency, retries with backoff / Retry-After, per-request time limit, the key read from
the environment variable named by ``--api-key-env`` only. Each item is one user message, the
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
from typing import Any

from tools.evaluation.generation import Generation, Request

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_DEADLINE_S = 7 * 24 * 3600.0  # each attempt has its own time limit; a batch has none


class OpenAIBackend:
    """Answers batches of requests concurrently through ``rewards.judge.ChatClient``."""

    def __init__(
        self,
        model: str,
        max_new_tokens: int = 1024,
        base_url: str = DEFAULT_BASE_URL,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        max_retries: int = 4,
        timeout_s: float = 120.0,
        usd_per_mtok_prompt: float = 0.0,
        usd_per_mtok_completion: float = 0.0,
    ) -> None:
        from rewards.judge import ChatClient, JudgeUsage, OpenAITransport, credentials_in_url
        from rewards.judge.loop import background_loop

        if credentials_in_url(base_url):
            raise SystemExit(
                "--base-url carries a credential (user:password@ or a key in the query): put the key in "
                "an environment variable and name it with --api-key-env"
            )
        self.model_name = model
        self.max_new_tokens = max_new_tokens
        self.prices = (usd_per_mtok_prompt, usd_per_mtok_completion)
        self.usage = JudgeUsage()
        self.client = ChatClient(
            OpenAITransport(base_url, api_key_env, concurrency),
            concurrency=concurrency,
            max_retries=max_retries,
            timeout_s=timeout_s,
            backoff_s=1.0,
            backoff_max_s=30.0,
        )
        self.loop = background_loop()[0]

    def render(self, prompt: str) -> str:
        """The text the endpoint receives (it applies its own chat template)."""
        return prompt

    def generate(self, requests: Sequence[Request]) -> list[Generation | None]:
        """One reply per request, in order; ``None`` where no reply came after the retries."""
        return self.loop.run(self._generate(requests), NO_DEADLINE_S)

    async def _generate(self, requests: Sequence[Request]) -> list[Generation | None]:
        deadline = asyncio.get_running_loop().time() + NO_DEADLINE_S
        return list(await asyncio.gather(*(self._one(request, deadline) for request in requests)))

    async def _one(self, request: Request, deadline: float) -> Generation | None:
        from rewards.judge import ChatRequest, TransportError
        from rewards.judge.images import load_image

        chat = ChatRequest(
            model=self.model_name,
            user=request.prompt,
            images=(load_image(request.image).data_url,),
            temperature=0.0,
            max_tokens=self.max_new_tokens,
        )
        self.usage.items += 1
        try:
            reply = await self.client.complete(chat, deadline, self.usage)
        except TransportError as error:
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
        usage = self.usage
        cost = (usage.prompt_tokens * self.prices[0] + usage.completion_tokens * self.prices[1]) / 1e6
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
        self.loop.run(self.client.aclose(), 10.0)
