"""Cross-modal process reward: an OpenAI-compatible judge grades the reasoning (DESIGN.md, "Judge").

The judge sees the image (base64 data URL), the question, the standard answer, whether the model's answer was
correct and the model's complete output (delimited as untrusted text), and replies
``{"integrity_score": x, "knowledge_score": y}``; the process reward is their mean.

``Judge.judge(items)`` is synchronous (EasyR1 and TRL call reward functions synchronously) and never raises:
calls run on a private background event loop (so it also works when the caller's thread runs a loop), with
bounded concurrency, retries with exponential backoff honouring Retry-After on 429/5xx/timeouts/connection
errors, a per-batch deadline and a persistent on-disk cache. A failed or unparseable judgement gets the
configured fallback and is flagged ``failed``. The API key is read from the environment variable named by
``api_key_env`` and is never logged, cached or stored in a config.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import heapq
import io
import itertools
import json
import logging
import math
import os
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import mktime_tz, parsedate_tz
from pathlib import Path
from typing import Any

import httpx
import openai

logger = logging.getLogger(__name__)

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_PROMPT_VERSION = "judge_v1"
INTEGRITY_KEY, KNOWLEDGE_KEY = "integrity_score", "knowledge_score"
RETRYABLE_STATUS = frozenset({408, 409, 429})
PROMPT_FIELDS = ("question", "standard_answer", "correctness", "response", "nonce")
# Concurrent requests per HTTP client: httpcore's connection pool does work quadratic in its connection count
# on every request, so 32 requests in flight cost less CPU through 4 clients of 8 than through one of 32.
CLIENT_REQUESTS = 8

# ------------------------------------------------------------------------------------------ reply parsing

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_KEY_VALUE_RE = {
    INTEGRITY_KEY: re.compile(r"integrity(?:_score)?[\"']?\s*[:=]\s*[\"']?(-?\d+(?:\.\d+)?)", re.IGNORECASE),
    KNOWLEDGE_KEY: re.compile(r"knowledge(?:_score)?[\"']?\s*[:=]\s*[\"']?(-?\d+(?:\.\d+)?)", re.IGNORECASE),
}


def _score(value: Any) -> float | None:
    """A finite number (or numeric string) clamped to [0, 1]; None otherwise (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, float(value)))


def _scores_from_object(obj: Any) -> tuple[float, float] | None:
    if not isinstance(obj, dict):
        return None
    integrity, knowledge = _score(obj.get(INTEGRITY_KEY)), _score(obj.get(KNOWLEDGE_KEY))
    return None if integrity is None or knowledge is None else (integrity, knowledge)


def _json_objects(text: str):
    """Every JSON object in ``text``: the whole text, fenced code blocks, then each ``{`` in prose order."""
    decoder = json.JSONDecoder()
    for candidate in (text.strip(), *(block.strip() for block in _FENCE_RE.findall(text))):
        try:
            yield json.loads(candidate)
        except ValueError:
            pass
    start = text.find("{")
    while start >= 0:
        try:
            yield decoder.raw_decode(text, start)[0]
        except ValueError:
            pass
        start = text.find("{", start + 1)


def parse_judge_reply(text: str) -> tuple[float, float] | None:
    """(integrity, knowledge) from a judge reply, each clamped to [0, 1]; None when either is missing.

    The JSON object may stand alone, sit in a fenced code block or inside prose; numbers may be numeric
    strings. Without a parseable object, ``integrity_score: 0.6`` style ``key: number`` pairs are used.
    """
    if not isinstance(text, str):
        return None
    for obj in _json_objects(text):
        scores = _scores_from_object(obj)
        if scores is not None:
            return scores
    found = {key: pattern.search(text) for key, pattern in _KEY_VALUE_RE.items()}
    if found[INTEGRITY_KEY] is None or found[KNOWLEDGE_KEY] is None:
        return None
    return _scores_from_object({key: match.group(1) for key, match in found.items()})


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class JudgeConfig:
    """Judge settings (``reward_function_kwargs.judge``); the key itself only comes from ``api_key_env``."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.1
    max_tokens: int = 256
    timeout_s: float = 60.0
    concurrency: int = 32
    max_retries: int = 4
    batch_deadline_s: float = 600.0
    cache_dir: str | None = ".cache/judge"
    fallback_correct: float = 0.5
    fallback_incorrect: float = 0.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    prompt_version: str = DEFAULT_PROMPT_VERSION
    prompt_usd_per_mtok: float = 0.0
    completion_usd_per_mtok: float = 0.0

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> JudgeConfig:
        """Validated config; unknown keys and any literal key (``api_key``) are errors that name the key."""
        values = dict(values or {})
        secrets = [key for key in values if "key" in key.lower() and key != "api_key_env"]
        if secrets:
            raise ValueError(
                f"judge config: {secrets} not allowed: put the API key in an environment variable "
                "and name that variable with api_key_env"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"judge config: unknown keys {unknown}; expected some of {sorted(known)}")
        config = cls(**values)
        if config.concurrency < 1 or config.max_retries < 0 or config.timeout_s <= 0:
            limits = "concurrency >= 1, max_retries >= 0, timeout_s > 0"
            raise ValueError(f"judge config: expected {limits}, got {values}")
        return config

    def fallback(self, correct: bool) -> float:
        return self.fallback_correct if correct else self.fallback_incorrect


# ------------------------------------------------------------------------------------------ prompt


@dataclass(frozen=True)
class JudgePrompt:
    """The versioned prompt file split into its system and user parts; ``sha256`` feeds the cache key."""

    version: str
    system: str
    user: str
    sha256: str

    @classmethod
    def load(cls, version: str) -> JudgePrompt:
        path = PROMPT_DIR / f"{version}.md"
        text = path.read_text(encoding="utf-8")
        body = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
        parts = re.split(r"^# (System|User)\s*$", body, flags=re.MULTILINE)
        sections = dict(zip(parts[1::2], (part.strip() for part in parts[2::2]), strict=True))
        if set(sections) != {"System", "User"}:
            raise ValueError(f"{path}: expected exactly a '# System' and a '# User' section")
        fields = set(re.findall(r"\{\{(\w+)\}\}", sections["User"]))
        if fields != set(PROMPT_FIELDS):
            raise ValueError(f"{path}: '# User' has {sorted(fields)}, expected {sorted(PROMPT_FIELDS)}")
        return cls(version, sections["System"], sections["User"], hashlib.sha256(text.encode()).hexdigest())

    def render_user(self, item: JudgeItem) -> str:
        """The user text; the untrusted output sits between markers carrying a nonce it cannot contain."""
        nonce = hashlib.sha256(item.response.encode()).hexdigest()[:16]
        question = "\n".join([item.question.strip(), *item.options])
        fields = {
            "question": question,
            "standard_answer": item.ground_truth.strip(),
            "correctness": "correct" if item.correct else "incorrect",
            "response": item.response,
            "nonce": nonce,
        }
        return re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)], self.user)


# ------------------------------------------------------------------------------- items, images, cache


@dataclass(frozen=True)
class JudgeItem:
    """One rollout to grade."""

    response: str
    question: str
    ground_truth: str
    image: str
    correct: bool
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgeResult:
    integrity: float
    knowledge: float
    failed: bool = False

    @property
    def process(self) -> float:
        return (self.integrity + self.knowledge) / 2


@dataclass(frozen=True)
class _Image:
    sha256: str
    data_url: str


_IMAGE_MIME = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


def _load_image(path: str) -> _Image:
    """sha256 of the file and a data URL the OpenAI API accepts (other formats are converted to PNG)."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    mime = next((mime for magic, mime in _IMAGE_MIME if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        from PIL import Image

        buffer = io.BytesIO()
        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB").save(buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    return _Image(digest, f"data:{mime};base64,{base64.b64encode(data).decode()}")


class JudgeCache:
    """Persistent judgements: append-only JSONL shards under ``directory``, one per writing process.

    Each process appends to its own shard (no locks, safe on shared file systems) and reads every shard when
    it starts; a torn last line from a killed process is skipped. Entries hold the key hash and the scores
    only, never the prompt or a credential.
    """

    def __init__(self, directory: str | None) -> None:
        self.entries: dict[str, tuple[float, float]] = {}
        self._pending: list[str] = []
        self._path: Path | None = None
        self.directory = None if directory is None else Path(directory).expanduser()
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for shard in sorted(self.directory.glob("judge-*.jsonl")):
            for line in shard.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                    self.entries[record["key"]] = (float(record["integrity"]), float(record["knowledge"]))
                except (ValueError, KeyError, TypeError):
                    continue
        shard = f"judge-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}.jsonl"
        self._path = self.directory / shard

    def get(self, key: str) -> tuple[float, float] | None:
        return self.entries.get(key)

    def put(self, key: str, scores: tuple[float, float]) -> None:
        self.entries[key] = scores
        if self._path is not None:
            self._pending.append(json.dumps({"key": key, "integrity": scores[0], "knowledge": scores[1]}))

    def flush(self) -> None:
        if self._path is None or not self._pending:
            return
        with self._path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(self._pending) + "\n")
        self._pending.clear()


# ------------------------------------------------------------------------------------------ usage


@dataclass
class JudgeUsage:
    """Counters for one batch (and, summed, for the process): calls are HTTP attempts."""

    items: int = 0
    cache_hits: int = 0
    judged: int = 0
    failed: int = 0
    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    failures: Counter = field(default_factory=Counter)

    def add(self, other: JudgeUsage) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "failures": dict(self.failures)}


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
    async def slot(self, priority: int = 0):
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


# ------------------------------------------------------------------------------------------ background loop


class _BackgroundLoop:
    """An event loop on a daemon thread: sync callers submit coroutines, whatever loop their thread runs."""

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


_LOOP: _BackgroundLoop | None = None
_JUDGES: dict[str, Judge] = {}
_LOCK = threading.Lock()


def _background_loop() -> _BackgroundLoop:
    """The process's judge loop, recreated after a fork (threads do not survive one)."""
    global _LOOP
    with _LOCK:
        if _LOOP is None or _LOOP.pid != os.getpid():
            _LOOP = _BackgroundLoop()
            _JUDGES.clear()
        return _LOOP


def reset_judges() -> None:
    """Forget the process's judges: the next call builds new ones, reading the caches from disk again."""
    with _LOCK:
        _JUDGES.clear()


def get_judge(settings: dict[str, Any] | JudgeConfig | None) -> Judge:
    """The process-wide judge for these settings (clients, cache and usage persist across batches)."""
    config = settings if isinstance(settings, JudgeConfig) else JudgeConfig.from_dict(settings)
    loop = _background_loop()
    name = json.dumps(dataclasses.asdict(config), sort_keys=True)
    with _LOCK:
        if name not in _JUDGES:
            _JUDGES[name] = Judge(config, loop)
        return _JUDGES[name]


# ------------------------------------------------------------------------------------------ the judge


class Judge:
    """Grades batches of rollouts; see the module docstring for the guarantees."""

    def __init__(self, config: JudgeConfig, loop: _BackgroundLoop | None = None) -> None:
        self.config = config
        self.prompt = JudgePrompt.load(config.prompt_version)
        self.cache = JudgeCache(config.cache_dir)
        self.total = JudgeUsage()
        self.last = JudgeUsage()
        self._loop = loop
        self._clients: list[Any] = []

    def judge(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """Grade ``items`` synchronously, in order; never raises."""
        self._loop = self._loop or _background_loop()
        try:
            # The batch enforces its own deadline; the margin only guards against a wedged loop.
            return self._loop.run(self.judge_batch(items), self.config.batch_deadline_s + 60)
        except Exception:  # a bug must not stop training: every item falls back
            logger.exception("judge batch failed; every item gets the fallback")
            return [self._fallback(item) for item in items]

    def _fallback(self, item: JudgeItem) -> JudgeResult:
        value = self.config.fallback(item.correct)
        return JudgeResult(value, value, failed=True)

    def _clients_for_loop(self) -> list[Any]:
        """One AsyncOpenAI client per CLIENT_REQUESTS concurrent requests, made once on the judge loop."""
        if not self._clients:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                logger.warning("judge: variable %s is not set; no API key sent", self.config.api_key_env)
            if logging.getLogger("httpx").level == logging.NOTSET:  # one INFO line per request otherwise
                logging.getLogger("httpx").setLevel(logging.WARNING)
            # max_retries=0: no SDK retries; _request retries itself (Retry-After, backoff, batch deadline).
            self._clients = [
                openai.AsyncOpenAI(
                    base_url=self.config.base_url,
                    api_key=key or "EMPTY",
                    max_retries=0,
                    timeout=self.config.timeout_s,
                )
                for _ in range(math.ceil(self.config.concurrency / CLIENT_REQUESTS))
            ]
        return self._clients

    def cache_key(self, item: JudgeItem, image_sha256: str) -> str:
        """sha256 of (judge model, prompt version + file hash, question, standard answer, response, image)."""
        parts = [
            self.config.model,
            self.prompt.version,
            self.prompt.sha256,
            item.question,
            item.ground_truth,
            item.response,
            image_sha256,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    async def judge_batch(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """Grade ``items`` on the running loop: cache first, identical requests once, then the deadline."""
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.batch_deadline_s
        usage = JudgeUsage(items=len(items))
        results: list[JudgeResult | None] = [None] * len(items)
        todo: dict[str, tuple[JudgeItem, _Image, list[int]]] = {}
        images: dict[str, _Image] = {}  # per batch: a group's rollouts share one image, memory stays bounded
        for index, item in enumerate(items):
            try:
                if item.image not in images:
                    images[item.image] = _load_image(item.image)
                image = images[item.image]
            except Exception as error:
                logger.warning("judge: image %s of item %d unreadable (%s)", item.image, index, error)
                usage.failures["image"] += 1
                results[index] = self._fallback(item)
                continue
            key = self.cache_key(item, image.sha256)
            cached = self.cache.get(key)
            if cached is not None:
                usage.cache_hits += 1
                results[index] = JudgeResult(*cached)
            else:
                todo.setdefault(key, (item, image, []))[2].append(index)

        clients = self._clients_for_loop()
        limiter = PriorityLimiter([clients[i % len(clients)] for i in range(self.config.concurrency)])
        tasks = {
            key: asyncio.create_task(self._request(item, image, limiter, deadline, usage))
            for key, (item, image, _) in todo.items()
        }
        if tasks:
            _, pending = await asyncio.wait(tasks.values(), timeout=max(0.0, deadline - loop.time()))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                usage.failures["deadline"] += len(pending)
        for key, task in tasks.items():
            scores = None
            if task.done() and not task.cancelled():
                if task.exception() is None:
                    scores = task.result()
                else:  # a bug, not a judge fault: still only this item falls back
                    logger.error("judge: request failed unexpectedly", exc_info=task.exception())
                    usage.failures[f"error_{type(task.exception()).__name__}"] += 1
            if scores is not None:
                self.cache.put(key, scores)
                usage.judged += 1
            for index in todo[key][2]:
                results[index] = JudgeResult(*scores) if scores is not None else self._fallback(items[index])
        self.cache.flush()

        usage.failed = sum(result.failed for result in results)
        usage.seconds = time.monotonic() - start
        usage.cost_usd = (
            usage.prompt_tokens * self.config.prompt_usd_per_mtok
            + usage.completion_tokens * self.config.completion_usd_per_mtok
        ) / 1e6
        self.last = usage
        self.total.add(usage)
        self._log(usage)
        return results  # type: ignore[return-value]

    async def _request(
        self, item: JudgeItem, image: _Image, limiter: PriorityLimiter, deadline: float, usage: JudgeUsage
    ) -> tuple[float, float] | None:
        """One judgement with retries; None when it fails (reason counted in ``usage.failures``)."""
        loop = asyncio.get_running_loop()
        body = {
            "model": self.config.model,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "messages": [
                {"role": "system", "content": self.prompt.system},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": self.prompt.render_user(item)},
                        {"type": "image_url", "image_url": {"url": image.data_url}},
                    ],
                },
            ],
        }
        for attempt in range(self.config.max_retries + 1):
            retry_after = None
            async with limiter.slot(priority=-attempt) as client:  # retries first
                remaining = deadline - loop.time()
                if remaining <= 0:
                    usage.failures["deadline"] += 1
                    return None
                usage.calls += 1
                try:
                    # The SDK's raw POST (auth, base_url, timeouts, error classes) rather than
                    # chat.completions.create, whose request transform and pydantic parsing cost ~0.5 ms
                    # CPU a call (a third of the client's work at 160 calls/s); _read_reply checks the reply.
                    reply = await client.post(
                        "/chat/completions",
                        body=body,
                        cast_to=httpx.Response,
                        options={"timeout": min(self.config.timeout_s, remaining)},
                    )
                    data = reply.json()
                except openai.APITimeoutError:
                    reason = "timeout"
                except openai.APIConnectionError:
                    reason = "connection"
                except openai.APIStatusError as error:
                    reason = f"http_{error.status_code}"
                    if error.status_code not in RETRYABLE_STATUS and error.status_code < 500:
                        usage.failures[reason] += 1
                        return None
                    retry_after = retry_after_seconds(error.response.headers)
                except Exception as error:  # malformed body, validation errors, anything else: no retry
                    usage.failures[f"error_{type(error).__name__}"] += 1
                    return None
                else:
                    return self._read_reply(data, usage)
            delay = retry_after
            if delay is None:
                backoff = min(self.config.backoff_max_s, self.config.backoff_s * 2**attempt)
                delay = backoff * random.uniform(0.5, 1.0)
            if attempt == self.config.max_retries or loop.time() + delay >= deadline:
                usage.failures[reason] += 1
                return None
            usage.retries += 1
            await asyncio.sleep(delay)
        return None

    @staticmethod
    def _read_reply(data: Any, usage: JudgeUsage) -> tuple[float, float] | None:
        """Scores from a chat-completion JSON body; counts tokens and the failure reason."""
        if not isinstance(data, dict):
            usage.failures["not_a_completion"] += 1
            return None
        tokens = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        for name in ("prompt_tokens", "completion_tokens"):
            if isinstance(tokens.get(name), int):
                setattr(usage, name, getattr(usage, name) + tokens[name])
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            usage.failures["empty_choices"] += 1
            return None
        message = choices[0].get("message")
        scores = parse_judge_reply(message.get("content")) if isinstance(message, dict) else None
        if scores is None:
            usage.failures["unparseable"] += 1
        return scores

    def _log(self, usage: JudgeUsage) -> None:
        line = (
            f"judge batch: {usage.items} items, {usage.cache_hits} cached, {usage.judged} judged, "
            f"{usage.failed} failed {dict(usage.failures)}, {usage.calls} calls, {usage.retries} retries, "
            f"{usage.prompt_tokens}+{usage.completion_tokens} tokens, ${usage.cost_usd:.4f}, "
            f"{usage.seconds:.2f}s; this process so far: {self.total.calls} calls, "
            f"{self.total.prompt_tokens + self.total.completion_tokens} tokens, ${self.total.cost_usd:.2f}"
        )
        (logger.warning if usage.failed else logger.info)(line)
        if self.cache.directory is not None:
            record = {"time": time.time(), "model": self.config.model, "prompt": self.prompt.version}
            with (self.cache.directory / "usage.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({**record, **usage.as_dict()}) + "\n")


# ------------------------------------------------------------------------------------------ batch API


def unpack_answer(answer: str) -> dict[str, Any]:
    """The JSON in EasyR1's answer column (ground_truth, question, options, image, id); {} if not JSON."""
    try:
        fields = json.loads(answer)
    except (TypeError, ValueError):
        return {}
    return fields if isinstance(fields, dict) else {}


def process_rewards(
    responses: Sequence[str],
    answers: Sequence[str],
    formats: Sequence[float],
    accuracies: Sequence[float],
    settings: dict[str, Any] | JudgeConfig | None,
) -> list[JudgeResult]:
    """Judge results in order: format-failing responses are not sent (scores 0, not failed); an answer
    without question/image (not the packed JSON) gets the fallback and counts as failed."""
    judge = get_judge(settings)
    results: list[JudgeResult | None] = [None] * len(responses)
    items: list[JudgeItem] = []
    positions: list[int] = []
    for index, (response, answer, format_ok, correct) in enumerate(
        zip(responses, answers, formats, accuracies, strict=True)
    ):
        if not format_ok:
            results[index] = JudgeResult(0.0, 0.0)
            continue
        fields = unpack_answer(answer)
        if not all(isinstance(fields.get(key), str) for key in ("question", "image", "ground_truth")):
            logger.warning("judge: answer %d lacks question/image/ground_truth JSON: %.80r", index, answer)
            value = judge.config.fallback(bool(correct))
            results[index] = JudgeResult(value, value, failed=True)
            continue
        options = fields.get("options") or ()
        items.append(
            JudgeItem(
                response=response,
                question=fields["question"],
                ground_truth=fields["ground_truth"],
                image=fields["image"],
                correct=bool(correct),
                options=tuple(str(option) for option in options) if isinstance(options, list) else (),
            )
        )
        positions.append(index)
    for index, result in zip(positions, judge.judge(items) if items else [], strict=True):
        results[index] = result
    return results  # type: ignore[return-value]
