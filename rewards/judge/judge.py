"""The judge: grades batches of rollouts with an OpenAI-compatible model; never raises into the trainer.

``Judge.judge(items)`` is synchronous (EasyR1 and TRL call reward functions synchronously): each batch runs
in its own ``asyncio.run`` with one SDK client (``rewards.judge.chat``: the SDK's retries and timeouts), at
most ``concurrency`` calls in flight and one deadline for the batch, after the persistent cache. A failed
judgement gets the configured fallback of its kind (``parse``: the judge replied without a usable verdict;
``transport``: no reply) and is counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from rewards.judge.cache import JudgeCache
from rewards.judge.chat import (
    ChatFailure,
    EncodedImage,
    chat_client,
    complete,
    load_image,
    run_sync,
    user_messages,
)
from rewards.judge.config import JudgeConfig
from rewards.judge.guard import JudgeGuard
from rewards.judge.items import JudgeItem, JudgeResult, JudgeUsage
from rewards.judge.prompt import JudgePrompt
from rewards.judge.reply import ReplyError, read_reply

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

# Bump when the reply grammar (rewards/judge/reply.py) changes what a reply is read as: part of the cache key.
REPLY_GRAMMAR = 2
Outcome = tuple[float, float] | str  # the scores, or the fallback kind ("parse" / "transport")


class Judge:
    """Grades batches of rollouts; see the module docstring for the guarantees."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.prompt = JudgePrompt.load(config.prompt_version)
        self.cache = JudgeCache(config.cache_dir)
        self.total = JudgeUsage()
        self.last = JudgeUsage()
        self.last_error: str | None = None  # the latest failure's reason and endpoint (for the guard)
        self._cache_errors_seen = 0
        self._guards: dict[tuple[float, int], JudgeGuard] = {}

    def judge(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """Grade ``items`` synchronously, in order; never raises."""
        try:
            return run_sync(self.judge_batch(items))
        except Exception:  # a bug must not stop training: every item falls back
            logger.exception("judge batch failed; every item gets the fallback")
            return [self.config.fallback(item.correct, "transport") for item in items]

    def guard(self, max_failure_rate: float, steps: int) -> JudgeGuard:
        """The health guard of this judge's training steps with these limits (``rewards.judge.guard``)."""
        if (limits := (max_failure_rate, steps)) not in self._guards:
            self._guards[limits] = JudgeGuard(*limits)
        return self._guards[limits]

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

    def request(self, item: JudgeItem, image: EncodedImage) -> dict[str, Any]:
        """The ``chat.completions.create`` arguments that grade ``item``."""
        return {
            "model": self.config.model,
            "messages": user_messages(self.prompt.render_user(item), (image.data_url,), self.prompt.system),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }

    def client(self, usage: JudgeUsage) -> AbstractAsyncContextManager[openai.AsyncOpenAI]:
        """This judge's SDK client for one batch (``rewards.judge.chat.chat_client``)."""
        config = self.config
        return chat_client(
            config.base_url,
            config.api_key_env,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            concurrency=config.concurrency,
            counters=usage,
        )

    async def judge_batch(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """Grade ``items`` on the running loop: cache first, identical requests once, then the deadline."""
        start = time.monotonic()
        usage = JudgeUsage(items=len(items))
        results: dict[int, JudgeResult] = {}
        todo: dict[str, tuple[dict[str, Any], list[int]]] = {}  # cache key -> (request, item indexes)
        images: dict[str, EncodedImage] = {}  # per batch: a group's rollouts share one image
        for index, item in enumerate(items):
            try:
                image = images[item.image] = images.get(item.image) or load_image(item.image)
            except Exception as error:
                logger.warning("judge: image %s of item %d unreadable (%s)", item.image, index, error)
                usage.failures["image"] += 1
                self.last_error = f"image {item.image} unreadable"
                results[index] = self.config.fallback(item.correct, "transport")
                continue
            key = self.cache_key(item, image.sha256)
            if (cached := self.cache.get(key)) is not None:
                usage.cache_hits += 1
                results[index] = JudgeResult(*cached)
            else:
                todo.setdefault(key, (self.request(item, image), []))[1].append(index)
        outcomes = await self._call_all({key: request for key, (request, _) in todo.items()}, usage)
        for key, (_, indexes) in todo.items():
            if isinstance(outcome := outcomes[key], tuple):
                self.cache.put(key, outcome)
                usage.judged += 1
                result = JudgeResult(*outcome)
            else:  # the items of one key share their correctness (part of the key), so their fallback
                result = self.config.fallback(items[indexes[0]].correct, outcome)
            for index in indexes:
                results[index] = result
        self.cache.flush()
        ordered = [results[index] for index in range(len(items))]
        self._account(usage, ordered, start)
        return ordered

    async def _call_all(self, requests: dict[str, dict[str, Any]], usage: JudgeUsage) -> dict[str, Outcome]:
        """Each request's outcome; those unanswered at the batch deadline fall back as ``transport``."""
        if not requests:
            return {}
        slots = asyncio.Semaphore(self.config.concurrency)
        async with self.client(usage) as client:
            tasks = {
                key: asyncio.create_task(self._judge_one(client, slots, r, usage))
                for key, r in requests.items()
            }
            _, late = await asyncio.wait(tasks.values(), timeout=self.config.batch_deadline_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if late:
            usage.failures["deadline"] += len(late)
            self.last_error = f"batch deadline ({self.config.batch_deadline_s:g} s) at {self.config.base_url}"
        return {key: "transport" if task in late else task.result() for key, task in tasks.items()}

    async def _judge_one(
        self, client: openai.AsyncOpenAI, slots: asyncio.Semaphore, request: dict[str, Any], usage: JudgeUsage
    ) -> Outcome:
        """The scores, or the failure kind; the reason is counted in ``usage``."""
        try:
            async with slots:
                reply = await complete(client, **request)
            usage.prompt_tokens += reply.prompt_tokens
            usage.completion_tokens += reply.completion_tokens
            return read_reply(reply.text)
        except ChatFailure as error:
            usage.failures[error.reason] += 1
            self.last_error = f"{error.reason} from {self.config.base_url}"
            return "transport"
        except ReplyError as error:
            usage.failures[error.reason] += 1
            self.last_error = f"{error.reason} reply from {self.config.model}"
            return "parse"
        except Exception as error:  # a bug, not a judge fault: still only this item falls back
            logger.error("judge: request failed unexpectedly", exc_info=error)
            usage.failures[f"error_{type(error).__name__}"] += 1
            return "transport"

    def _account(self, usage: JudgeUsage, results: list[JudgeResult], start: float) -> None:
        """Complete the batch's ``usage``, add it to the process's total, log it and append it to
        ``usage.jsonl``."""
        usage.failed = sum(result.failed for result in results)
        usage.parse_failed = sum(result.failure == "parse" for result in results)
        usage.transport_failed = usage.failed - usage.parse_failed
        usage.cache_errors = self.cache.errors - self._cache_errors_seen  # incl. last batch's usage line
        self._cache_errors_seen = self.cache.errors
        usage.seconds = time.monotonic() - start
        usage.cost_usd = (
            usage.prompt_tokens * self.config.prompt_usd_per_mtok
            + usage.completion_tokens * self.config.completion_usd_per_mtok
        ) / 1e6
        self.last = usage
        self.total.add(usage)
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
        record = {"time": time.time(), "model": self.config.model, "prompt": self.prompt.version}
        self.cache.append_usage({**record, **usage.as_dict()})


_JUDGES: dict[tuple[int, JudgeConfig], Judge] = {}
_LOCK = threading.Lock()


def reset_judges() -> None:
    """Forget the process's judges: the next call builds new ones, reading the caches again."""
    with _LOCK:
        _JUDGES.clear()


def get_judge(settings: dict[str, Any] | None) -> Judge:
    """The process-wide judge for these settings (cache and usage persist across batches); a forked child
    gets its own (its own cache shard)."""
    config = JudgeConfig.from_dict(settings)
    with _LOCK:
        if (os.getpid(), config) not in _JUDGES:
            _JUDGES[os.getpid(), config] = Judge(config)
        return _JUDGES[os.getpid(), config]
