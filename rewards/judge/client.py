"""ChatClient: retries, backoff, bounded concurrency and time limits over any Transport.

Shared by the judge and any other caller that needs plain chat completions with images (e.g. an evaluation
backend): ``await ChatClient(transport, ...).complete(request, deadline, counters)``.
"""

from __future__ import annotations

import asyncio
import random
from typing import Protocol

from rewards.judge.limiter import PriorityLimiter
from rewards.judge.transport import ChatReply, ChatRequest, Transport, TransportError


class Counters(Protocol):
    calls: int
    retries: int


class ChatClient:
    """At most ``concurrency`` attempts in flight; each attempt bounded in *total* time by ``timeout_s`` (a
    server that drips bytes cannot hold a slot longer); up to ``max_retries`` retries of retryable failures
    after the server's Retry-After or an exponential, jittered backoff (``backoff_s`` doubling up to
    ``backoff_max_s``, times a uniform [0.5, 1]); never past ``deadline`` (event-loop time); retries jump the
    queue ahead of fresh requests."""

    def __init__(
        self,
        transport: Transport,
        *,
        concurrency: int,
        max_retries: int,
        timeout_s: float,
        backoff_s: float,
        backoff_max_s: float,
    ) -> None:
        self.transport = transport
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.limiter = PriorityLimiter(range(concurrency))

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)

    async def complete(self, request: ChatRequest, deadline: float, counters: Counters) -> ChatReply:
        """The reply; TransportError (reason ``deadline`` when time ran out) after the last failed attempt."""
        loop = asyncio.get_running_loop()
        for attempt in range(self.max_retries + 1):
            async with self.limiter.slot(priority=-attempt):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TransportError("deadline", retryable=False)
                limit = min(self.timeout_s, remaining)
                counters.calls += 1
                try:
                    async with asyncio.timeout(limit):
                        return await self.transport.complete(request, limit)
                except TimeoutError:
                    reason = "deadline" if limit >= remaining else "timeout"
                    error = TransportError(reason, retryable=reason == "timeout")
                except TransportError as failure:
                    error = failure
            if not error.retryable:
                raise error
            delay = error.retry_after if error.retry_after is not None else self.backoff(attempt)
            if attempt == self.max_retries or loop.time() + delay >= deadline:
                raise error
            counters.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def aclose(self) -> None:
        await self.transport.aclose()
