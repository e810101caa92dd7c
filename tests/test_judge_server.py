"""`pathvlm judge-server`, the fake OpenAI-compatible judge: CLI, request-dependent scores, faults, load."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request

import httpx
import pytest

from tools.cli import main as cli_main
from tools.dev.judge_server import FakeJudgeConfig, JudgeServer, fake_scores

STEPS = "The image shows atypical cells; option B is excluded because the pattern is typical."


def chat(output: str) -> dict:
    text = (
        f"## Model output\nBEGIN UNTRUSTED MODEL OUTPUT abc123\n{output}\nEND UNTRUSTED MODEL OUTPUT abc123"
    )
    return {
        "model": "fake-judge",
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (STEPS, (1.0, 1.0)),
        ("The cells are malignant.", (0.2, 1.0)),
        ("Adenocarcinoma.", (0.0, 1.0)),
        (f"{STEPS} This contradicts itself and uses outdated criteria.", (1.0, 0.2)),
        (f"{STEPS} contradict contradict contradict", (1.0, 0.0)),
    ],
)
def test_fake_scores_depend_on_the_output(output: str, expected: tuple[float, float]) -> None:
    assert fake_scores(output) == expected


def test_cli_serves_chat_completions_and_stats() -> None:
    command = [sys.executable, "-m", "tools.cli", "judge-server", "--port", "0", "--latency-ms", "1"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("judge-server listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1].strip()
        status, reply = post(url, chat("The cells are malignant."))
        assert status == 200
        content = json.loads(reply["choices"][0]["message"]["content"])
        assert content == {"integrity_score": 0.2, "knowledge_score": 1.0}
        assert reply["usage"]["prompt_tokens"] > 0
        with urllib.request.urlopen(f"{url}/stats", timeout=10) as response:
            assert json.loads(response.read()) == {"requests": 1, "ok": 1}
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_cli_help_and_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["judge-server", "--help"])
    assert exit_info.value.code == 0
    assert "--malformed-rate" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="error-rate must be in"):
        cli_main(["judge-server", "--port", "0", "--error-rate", "2"])


def test_random_faults_follow_the_rates() -> None:
    with JudgeServer(FakeJudgeConfig(error_rate=1.0)) as server:
        status, reply = post(server.url, chat(STEPS))
        assert status == 500 and "fault" in reply["error"]["message"]
    with JudgeServer(FakeJudgeConfig(malformed_rate=1.0)) as server:
        status, reply = post(server.url, chat(STEPS))
        assert status == 200 and "integrity_score" not in reply["choices"][0]["message"]["content"]
    with JudgeServer(FakeJudgeConfig(error_rate=0.3, seed=7)) as server:
        statuses = [post(server.url, chat(f"{STEPS} {i}"))[0] for i in range(200)]
        assert 40 <= statuses.count(500) <= 80
        assert server.stats["requests"] == 200


def test_directives_429_with_retry_after_then_recovery() -> None:
    with JudgeServer(FakeJudgeConfig(retry_after_s=2)) as server:
        request = urllib.request.Request(
            f"{server.url}/chat/completions", json.dumps(chat(f"{STEPS} [[fault:429x1]]")).encode()
        )
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=10)
        assert error.value.code == 429 and error.value.headers["Retry-After"] == "2"
        status, _ = post(server.url, chat(f"{STEPS} [[fault:429x1]]"))
        assert status == 200
        status, _ = post(server.url, {"not": "a chat request"})
        assert status == 400


def test_handles_32_concurrent_requests_in_one_latency() -> None:
    async def burst(url: str) -> float:
        async with httpx.AsyncClient(timeout=10) as client:
            start = time.perf_counter()
            replies = await asyncio.gather(
                *(client.post(f"{url}/chat/completions", json=chat(f"{STEPS} {i}")) for i in range(32))
            )
            elapsed = time.perf_counter() - start
        assert [reply.status_code for reply in replies] == [200] * 32
        return elapsed

    with JudgeServer(FakeJudgeConfig(latency_ms=300)) as server:
        elapsed = asyncio.run(burst(server.url))
        assert server.stats["requests"] == 32
    # Concurrent: a few latencies at most (the other pytest group trains on the same 2 cores in `make test`),
    # far from the 32 latencies (9.6 s) of one request at a time.
    assert elapsed < 0.3 * 8


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("huge", lambda content: content == "{" * 200_000),
        (
            "quote",
            lambda content: '{"integrity_score": 1.0' in content
            and content.endswith('"knowledge_score": 1.0}'),
        ),
        ("nan", lambda content: "NaN" in content),
    ],
)
def test_hostile_reply_faults(fault: str, check) -> None:
    with JudgeServer() as server:
        status, reply = post(server.url, chat(f"{STEPS} [[fault:{fault}]]"))
    assert status == 200 and check(reply["choices"][0]["message"]["content"]), fault


def test_reads_large_image_requests_with_its_own_settings(caplog: pytest.LogCaptureFixture) -> None:
    """A 3 MB image data URL is read, not refused at aiohttp's 1 MB default (413), and the server's settings
    take effect instead of a per-connection "Failed to create request handler" fallback."""
    body = chat(STEPS)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 3_000_000}}
    body["messages"][0]["content"].append(image)
    with caplog.at_level(logging.WARNING), JudgeServer() as server:
        status, reply = post(server.url, body)
    assert status == 200 and reply["choices"][0]["message"]["content"]
    assert "Failed to create request handler" not in caplog.text


def test_cli_takes_vllm_serve_arguments() -> None:
    command = [sys.executable, "-m", "tools.cli", "judge-server", "Qwen/Qwen2.5-VL-72B-Instruct-AWQ"]
    command += ["--served-model-name", "local-judge", "--tensor-parallel-size", "4", "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().rsplit(" ", 1)[1].strip()
        with urllib.request.urlopen(f"{url}/models", timeout=10) as response:
            assert json.loads(response.read())["data"][0]["id"] == "local-judge"
    finally:
        server.terminate()
        server.wait(timeout=10)
