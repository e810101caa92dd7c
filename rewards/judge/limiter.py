"""A concurrency limiter whose waiters are served by (priority, arrival): retries first."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any


class PriorityLimiter:
    """Lends a fixed set of tokens (one per concurrent request); waiters are served by (priority, arrival).

    Retries ask with a lower priority than fresh requests, so a retry runs as soon as a token frees instead of
    queueing behind the rest of the batch (which would put every retry in the batch's tail).
    """

    def __init__(self, tokens: Sequence[Any]) -> None:
        self._free = list(tokens)
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._arrivals = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = 0) -> AsyncIterator[Any]:
        token = await self._acquire(priority)
        try:
            yield token
        finally:
            self._release(token)

    async def _acquire(self, priority: int) -> Any:
        if self._free and not self._waiters:
            return self._free.pop()
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._arrivals), future))
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a token, then cancelled: pass it on
                self._release(future.result())
            raise

    def _release(self, token: Any) -> None:
        while self._waiters:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                future.set_result(token)
                return
        self._free.append(token)
