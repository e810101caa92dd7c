"""The judge: grades batches of rollouts with an OpenAI-compatible model; never raises into the trainer.

``Judge.judge(items)`` is synchronous (EasyR1 and TRL call reward functions synchronously): calls run on a
private background loop, through a ChatClient (bounded concurrency, retries, per-request and per-batch time
limits) over a Transport, with a persistent cache. A failed judgement gets the configured fallback of its
kind (``parse``: the judge replied without a usable verdict; ``transport``: no reply) and is counted.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from rewards.judge.cache import JudgeCache
from rewards.judge.client import ChatClient
from rewards.judge.config import JudgeConfig
from rewards.judge.guard import JudgeGuard
from rewards.judge.images import EncodedImage, load_image
from rewards.judge.items import JudgeItem, JudgeResult
from rewards.judge.loop import BackgroundLoop, background_loop
from rewards.judge.openai_transport import OpenAITransport
from rewards.judge.prompt import JudgePrompt
from rewards.judge.reply import ReplyError, read_reply
from rewards.judge.transport import ChatRequest, Transport, TransportError
from rewards.judge.usage import JudgeUsage

logger = logging.getLogger(__name__)

# Bump when the reply grammar (rewards/judge/reply.py) changes what a reply is read as: part of the cache key.
REPLY_GRAMMAR = 2
INLINE_REPLY_CHARS = 4096  # longer replies are parsed on a worker thread, off the event loop


class Judge:
    """Grades batches of rollouts; see the module docstring for the guarantees."""

    def __init__(
        self, config: JudgeConfig, loop: BackgroundLoop | None = None, transport: Transport | None = None
    ) -> None:
        self.config = config
        self.prompt = JudgePrompt.load(config.prompt_version)
        self.cache = JudgeCache(config.cache_dir)
        self.total = JudgeUsage()
        self.last = JudgeUsage()
        self._loop = loop
        self._cache_errors_seen = 0
        self.last_error: str | None = None  # the latest failure's reason and endpoint (for the guard)
        self._guards: dict[tuple[float, int], JudgeGuard] = {}
        self.client = ChatClient(
            transport or OpenAITransport(config.base_url, config.api_key_env, config.concurrency),
            concurrency=config.concurrency,
            max_retries=config.max_retries,
            timeout_s=config.timeout_s,
            backoff_s=config.backoff_s,
            backoff_max_s=config.backoff_max_s,
        )

    def judge(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """Grade ``items`` synchronously, in order; never raises."""
        self._loop = self._loop or background_loop()[0]
        try:
            # The batch enforces its own deadline; the margin only guards against a wedged loop.
            return self._loop.run(self.judge_batch(items), self.config.batch_deadline_s + 60)
        except Exception:  # a bug must not stop training: every item falls back
            logger.exception("judge batch failed; every item gets the fallback")
            return [self._fallback(item, "transport") for item in items]

    def close(self) -> None:
        """Close the HTTP client (its connections) on the judge's loop; never raises."""
        if self._loop is None or self._loop.pid != os.getpid() or not self._loop.thread.is_alive():
            return
        try:
            self._loop.run(self.client.aclose(), 5.0)
        except Exception:  # closing is best effort: the process may be exiting
            logger.debug("judge: closing the client failed", exc_info=True)

    def guard(self, max_failure_rate: float, steps: int) -> JudgeGuard:
        """The health guard of this judge's training steps with these limits (``rewards.judge.guard``)."""
        key = (max_failure_rate, steps)
        if key not in self._guards:
            self._guards[key] = JudgeGuard(max_failure_rate, steps)
        return self._guards[key]

    def _fallback(self, item: JudgeItem, kind: str) -> JudgeResult:
        value = self.config.fallback(item.correct, kind)
        return JudgeResult(value, value, failure=kind)

    def cache_key(self, item: JudgeItem, image_sha256: str) -> str:
        """sha256 of the judge's identity (model, prompt version and file hash, temperature, max_tokens, reply
        grammar) and of the graded item (question, options, standard answer, correctness, response, image).
        Not the base URL: where the judge is served (a local judge's port follows its job id) is no part of
        its verdict."""
        parts = [
            self.config.model,
            self.prompt.version,
            self.prompt.sha256,
            self.config.temperature,
            self.config.max_tokens,
            REPLY_GRAMMAR,
            item.question,
            list(item.options),
            item.ground_truth,
            item.correct,
            item.response,
            image_sha256,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def request(self, item: JudgeItem, image: EncodedImage) -> ChatRequest:
        return ChatRequest(
            model=self.config.model,
            user=self.prompt.render_user(item),
            images=(image.data_url,),
            system=self.prompt.system,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
        )

    async def judge_batch(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """Grade ``items`` on the running loop: cache first, identical requests once, then the deadline."""
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.batch_deadline_s
        usage = JudgeUsage(items=len(items))
        results: list[JudgeResult | None] = [None] * len(items)
        todo: dict[str, tuple[JudgeItem, EncodedImage, list[int]]] = {}
        tasks: dict[str, asyncio.Task] = {}
        images: dict[
            str, EncodedImage
        ] = {}  # per batch: a group's rollouts share one image, memory stays bounded
        for index, item in enumerate(items):
            try:
                if item.image not in images:
                    images[item.image] = load_image(item.image)
                image = images[item.image]
            except Exception as error:
                logger.warning("judge: image %s of item %d unreadable (%s)", item.image, index, error)
                usage.failures["image"] += 1
                self.last_error = f"image {item.image} unreadable"
                results[index] = self._fallback(item, "transport")
                continue
            key = self.cache_key(item, image.sha256)
            cached = self.cache.get(key)
            if cached is not None:
                usage.cache_hits += 1
                results[index] = JudgeResult(*cached)
            elif key in todo:
                todo[key][2].append(index)
            else:
                todo[key] = (item, image, [index])
                tasks[key] = asyncio.create_task(self._judge_one(item, image, deadline, usage))
                if len(tasks) % self.config.concurrency == 0:
                    await asyncio.sleep(0)  # the first wave goes out while the rest is prepared
        if tasks:
            _, pending = await asyncio.wait(tasks.values(), timeout=max(0.0, deadline - loop.time()))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                usage.failures["deadline"] += len(pending)
                self.last_error = (
                    f"batch deadline ({self.config.batch_deadline_s:g} s) at {self.config.base_url}"
                )
        for key, task in tasks.items():
            outcome: tuple[float, float] | str = "transport"
            if task.done() and not task.cancelled():
                if task.exception() is None:
                    outcome = task.result()
                else:  # a bug, not a judge fault: still only this item falls back
                    logger.error("judge: request failed unexpectedly", exc_info=task.exception())
                    usage.failures[f"error_{type(task.exception()).__name__}"] += 1
            if isinstance(outcome, tuple):
                self.cache.put(key, outcome)
                usage.judged += 1
            for index in todo[key][2]:
                results[index] = (
                    JudgeResult(*outcome)
                    if isinstance(outcome, tuple)
                    else self._fallback(items[index], outcome)
                )
        self.cache.flush()
        usage.cache_errors = self.cache.errors - self._cache_errors_seen  # incl. last batch's usage line
        self._cache_errors_seen = self.cache.errors
        self._finish(usage, results, start)
        self.cache.append_usage(
            {
                "time": time.time(),
                "model": self.config.model,
                "prompt": self.prompt.version,
                **usage.as_dict(),
            }
        )
        return results  # type: ignore[return-value]

    def _finish(self, usage: JudgeUsage, results: list[JudgeResult | None], start: float) -> None:
        usage.failed = sum(result.failed for result in results if result is not None)
        usage.parse_failed = sum(result.failure == "parse" for result in results if result is not None)
        usage.transport_failed = usage.failed - usage.parse_failed
        usage.seconds = time.monotonic() - start
        usage.cost_usd = (
            usage.prompt_tokens * self.config.prompt_usd_per_mtok
            + usage.completion_tokens * self.config.completion_usd_per_mtok
        ) / 1e6
        self.last = usage
        self.total.add(usage)
        self._log(usage)

    async def _judge_one(
        self, item: JudgeItem, image: EncodedImage, deadline: float, usage: JudgeUsage
    ) -> tuple[float, float] | str:
        """The scores, or the failure kind ("transport" / "parse"); the reason is counted in ``usage``."""
        try:
            reply = await self.client.complete(self.request(item, image), deadline, usage)
        except TransportError as error:
            usage.failures[error.reason] += 1
            self.last_error = f"{error.reason} from {self.config.base_url}"
            return "transport"
        usage.prompt_tokens += reply.prompt_tokens
        usage.completion_tokens += reply.completion_tokens
        try:
            if reply.text is not None and len(reply.text) > INLINE_REPLY_CHARS:
                return await asyncio.to_thread(read_reply, reply.text)
            return read_reply(reply.text)
        except ReplyError as error:
            usage.failures[error.reason] += 1
            self.last_error = f"{error.reason} reply from {self.config.model}"
            return "parse"

    def _log(self, usage: JudgeUsage) -> None:
        line = (
            f"judge batch: {usage.items} items, {usage.cache_hits} cached, {usage.judged} judged, "
            f"{usage.failed} failed ({usage.parse_failed} parse, {usage.transport_failed} transport) "
            f"{dict(usage.failures)}, {usage.cache_errors} cache errors, "
            f"{usage.calls} calls, {usage.retries} retries, "
            f"{usage.prompt_tokens}+{usage.completion_tokens} tokens, ${usage.cost_usd:.4f}, "
            f"{usage.seconds:.2f}s; this process so far: {self.total.calls} calls, "
            f"{self.total.prompt_tokens + self.total.completion_tokens} tokens, ${self.total.cost_usd:.2f}"
        )
        (logger.warning if usage.failed or usage.cache_errors else logger.info)(line)


_JUDGES: dict[str, Judge] = {}
_LOCK = threading.Lock()


def reset_judges() -> None:
    """Close and forget the process's judges: the next call builds new ones, reading the caches again."""
    with _LOCK:
        judges = list(_JUDGES.values())
        _JUDGES.clear()
    for judge in judges:
        judge.close()


atexit.register(reset_judges)


def get_judge(settings: dict[str, Any] | JudgeConfig | None) -> Judge:
    """The process-wide judge for these settings (clients, cache and usage persist across batches)."""
    config = settings if isinstance(settings, JudgeConfig) else JudgeConfig.from_dict(settings)
    loop, fresh = background_loop()
    name = json.dumps(dataclasses.asdict(config), sort_keys=True)
    with _LOCK:
        if fresh:
            _JUDGES.clear()
        if name not in _JUDGES:
            _JUDGES[name] = Judge(config, loop)
        return _JUDGES[name]
