"""The judge's event loop on a daemon thread: sync callers submit coroutines, whatever loop they run."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any


class BackgroundLoop:
    """An event loop on a daemon thread; ``pid`` tells a forked child that the thread is gone."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pathvlm-judge-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float) -> Any:
        """The coroutine's result; after ``timeout`` seconds it is cancelled and TimeoutError raised."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("Judge.judge() called on the judge's own loop; await judge_batch() instead")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise


_LOOP: BackgroundLoop | None = None
_LOCK = threading.Lock()


def background_loop() -> tuple[BackgroundLoop, bool]:
    """The process's loop and whether it was just (re)created (after a fork threads do not survive)."""
    global _LOOP
    with _LOCK:
        if _LOOP is None or _LOOP.pid != os.getpid():
            _LOOP = BackgroundLoop()
            return _LOOP, True
        return _LOOP, False
