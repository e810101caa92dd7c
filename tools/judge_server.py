"""`pathvlm judge-server`: a fake OpenAI-compatible chat-completions judge on 127.0.0.1.

For tests, the smoke pipeline and benchmarks. It answers ``POST /v1/chat/completions`` with
``{"integrity_score": x, "knowledge_score": y}`` computed from the model output inside the judge prompt
(``fake_scores``: -0.4 per missing reasoning step, detected by keywords, and -0.4 per violation keyword), so
a real judgement is distinguishable from a fallback. ``GET /stats`` returns request counters.

Faults: ``--error-rate`` (HTTP 500) and ``--malformed-rate`` (a reply without scores) at random (``--seed``),
plus directives written in the model output, ``[[fault:KIND]]`` (always) or ``[[fault:KINDxN]]`` (the first N
requests for that output only): 429 (with Retry-After), 500, timeout (never answers), close (drops the
connection), malformed (prose without scores), badjson (a body that is not JSON), range (scores outside
[0, 1]), empty (no choices), prose (scores in a fenced block inside prose).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
OUTPUT_RE = re.compile(r"BEGIN UNTRUSTED MODEL OUTPUT (\w+)\n(.*?)\nEND UNTRUSTED MODEL OUTPUT \1", re.DOTALL)
FAULT_RE = re.compile(r"\[\[fault:(\w+?)(?:x(\d+))?\]\]")
FAULTS = ("429", "500", "timeout", "close", "malformed", "badjson", "range", "empty", "prose")
# The paper's three reasoning steps (image features, option elimination, medical knowledge), by keyword.
STEP_KEYWORDS = (
    ("image", "stain", "cell", "nucle", "morpholog", "feature"),
    ("option", "eliminat", "exclud", "rule out"),
    ("because", "characteristic", "typical", "consistent with", "known"),
)
VIOLATION_KEYWORDS = ("contradict", "outdated", "always benign")
REASONS = {
    200: "OK",
    404: "Not Found",
    400: "Bad Request",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Server Error",
}


def fake_scores(output: str) -> tuple[float, float]:
    """The fake judge's (integrity, knowledge) for a model output: 1 - 0.4 per missing step / violation."""
    text = output.lower()
    missing = sum(not any(word in text for word in words) for words in STEP_KEYWORDS)
    violations = sum(text.count(word) for word in VIOLATION_KEYWORDS)
    return round(max(0.0, 1 - 0.4 * missing), 6), round(max(0.0, 1 - 0.4 * violations), 6)


@dataclass
class FakeJudgeConfig:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    malformed_rate: float = 0.0
    seed: int = 0
    retry_after_s: float = 1.0


class FakeJudge:
    """The request handler: one instance per server, state (counters, fault budgets) lives here."""

    def __init__(self, config: FakeJudgeConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.stats: Counter = Counter()
        self.authorizations: Counter = Counter()  # Authorization header values seen (tests check keys)
        self._fault_counts: Counter = Counter()
        self._connections: set[asyncio.StreamWriter] = set()

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive; one request at a time per connection."""
        self._connections.add(writer)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                response = await self.respond(method, target.split("?", 1)[0], body, headers)
                if response is None:
                    break
                writer.write(response)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass  # client went away, garbage request, or server shutdown: just drop the connection
        finally:
            self._connections.discard(writer)
            writer.close()

    def close_connections(self) -> None:
        for writer in list(self._connections):
            writer.close()

    async def respond(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> bytes | None:
        """The raw HTTP response for one request; None closes the connection without one."""
        if method == "GET" and path.rstrip("/").endswith("/stats"):
            return _http(200, json.dumps(dict(self.stats)).encode())
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return _http(
                200,
                json.dumps({"object": "list", "data": [{"id": "fake-judge", "object": "model"}]}).encode(),
            )
        if not path.rstrip("/").endswith("/chat/completions"):
            return _http(404, b'{"error": {"message": "not found"}}')
        if method != "POST":
            return _http(405, b'{"error": {"message": "use POST"}}')
        self.stats["requests"] += 1
        self.authorizations[(headers or {}).get("authorization", "")] += 1
        try:
            request = json.loads(body)
            output = _model_output(request)
        except (ValueError, TypeError, KeyError, AttributeError):
            self.stats["bad_request"] += 1
            return _http(400, b'{"error": {"message": "body is not a chat completion request"}}')
        fault = self._fault(output)
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)
        self.stats[f"fault_{fault}" if fault else "ok"] += 1
        if fault == "timeout":
            await asyncio.sleep(3600)
        if fault == "close":
            return None
        if fault in ("429", "500"):
            headers = {"retry-after": f"{self.config.retry_after_s:g}"} if fault == "429" else {}
            message = json.dumps({"error": {"message": f"fake judge fault {fault}", "type": "fake"}})
            return _http(int(fault), message.encode(), headers)
        if fault == "badjson":
            return _http(200, b'{"id": "broken", "choices": [')
        integrity, knowledge = fake_scores(output)
        content = json.dumps({"integrity_score": integrity, "knowledge_score": knowledge})
        if fault == "range":
            content = json.dumps({"integrity_score": 1.7, "knowledge_score": -0.3})
        elif fault == "malformed":
            content = "The reasoning is thorough. I cannot express it as numbers."
        elif fault == "prose":
            content = f"Here is my grading.\n```json\n{content}\n```\nThe reasoning is mostly sound."
        choices = [] if fault == "empty" else [_choice(content)]
        completion = {
            "id": f"chatcmpl-fake-{self.stats['requests']}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-judge"),
            "choices": choices,
            "usage": {
                "prompt_tokens": len(body) // 4,
                "completion_tokens": len(content) // 4,
                "total_tokens": len(body) // 4 + len(content) // 4,
            },
        }
        return _http(200, json.dumps(completion).encode())

    def _fault(self, output: str) -> str | None:
        """The fault for this request: a directive in the output first, then the random rates."""
        match = FAULT_RE.search(output)
        if match and match.group(1) in FAULTS:
            if match.group(2) is None:
                return match.group(1)
            key = (match.group(1), hashlib.sha256(output.encode()).hexdigest())
            self._fault_counts[key] += 1
            if self._fault_counts[key] <= int(match.group(2)):
                return match.group(1)
            return None
        draw = self.rng.random()
        if draw < self.config.error_rate:
            return "500"
        if draw < self.config.error_rate + self.config.malformed_rate:
            return "malformed"
        return None


def _choice(content: str) -> dict[str, Any]:
    return {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}


def _model_output(request: dict[str, Any]) -> str:
    """The untrusted model output inside the judge prompt (the whole user text when there are no markers)."""
    texts = []
    for message in request["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(part.get("text", "") for part in content if part.get("type") == "text")
    text = "\n".join(texts)
    match = OUTPUT_RE.search(text)
    return match.group(2) if match else text


def _http(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class JudgeServer:
    """The fake judge on a background thread (tests, benchmarks): ``with JudgeServer(...) as server:``."""

    def __init__(self, config: FakeJudgeConfig | None = None, port: int = 0) -> None:
        self.judge = FakeJudge(config or FakeJudgeConfig())
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-judge", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The ``base_url`` to give an OpenAI client."""
        return f"http://{HOST}:{self.port}/v1"

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.judge.stats)

    def start(self) -> JudgeServer:
        self._thread.start()
        start = asyncio.start_server(self.judge.handle_connection, HOST, self.port, backlog=1024)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            self.judge.close_connections()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> JudgeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def serve(config: FakeJudgeConfig, port: int) -> None:
    """Serve until cancelled, printing the base URL once listening (``--port 0`` picks a free port)."""
    judge = FakeJudge(config)
    server = await asyncio.start_server(judge.handle_connection, HOST, port, backlog=1024)
    print(f"judge-server listening on http://{HOST}:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    async with server:
        await server.serve_forever()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "judge-server",
        help="fake OpenAI-compatible judge on 127.0.0.1 (tests, smoke, benchmarks)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one and print it)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every reply (default 0)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction answered with HTTP 500")
    parser.add_argument("--malformed-rate", type=float, default=0.0, help="fraction answered without scores")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults (default 0)")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429s")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name in ("error_rate", "malformed_rate"):
        if not 0 <= getattr(args, name) <= 1:
            raise SystemExit(f"judge-server: --{name.replace('_', '-')} must be in [0, 1]")
    config = FakeJudgeConfig(
        args.latency_ms, args.error_rate, args.malformed_rate, args.seed, args.retry_after
    )
    try:
        asyncio.run(serve(config, args.port))
    except KeyboardInterrupt:
        pass
    return 0
