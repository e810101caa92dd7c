"""One real judge call before a run that needs the judge: a dead endpoint is an error, not a rescaled reward.

``check_judge(config)`` grades one tiny item (a 28x28 image, a two-option question, a formatted response)
with the configured endpoint, model, prompt and key, bypassing the cache, and returns a line saying what
answered. A missing key (``api_key_env`` names an unset variable; ``api_key_env: null`` says the endpoint
needs none), HTTP 401/403 (the key), 404 (an unknown model or a wrong ``base_url``), any other HTTP error
left after the retries, and no answer at all raise ``JudgeUnusable`` with one line naming the variable or
the URL. A reply without a usable verdict is reported, not refused: one reply can be unlucky, and the
judge guard (``rewards.judge.guard``) stops a run whose judge keeps failing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import time

from rewards.judge.chat import ChatFailure, ChatReply, complete, load_image, run_sync
from rewards.judge.config import JudgeConfig
from rewards.judge.items import JudgeItem, JudgeUsage
from rewards.judge.judge import Judge
from rewards.judge.reply import ReplyError, read_reply

CHECK_DEADLINE_S = 120.0  # retries included; a firewalled node fails here instead of on every step
CHECK_RETRIES = 3  # at least: one 429/5xx/timeout must not refuse a run
ITEM = JudgeItem(
    response="<think>The section is mostly red, typical of haemorrhage; B is ruled out.</think>"
    "<answer>A) Haemorrhage</answer>",
    question="What does the section show?",
    ground_truth="A) Haemorrhage",
    image="",
    correct=True,
    options=("A) Haemorrhage", "B) Necrosis"),
)
URL_VARIABLE = "PATHVLM_JUDGE_BASE_URL"
MODEL_VARIABLE = "PATHVLM_JUDGE_MODEL"


class JudgeUnusable(RuntimeError):
    """The judge cannot grade: the message is one line naming the variable or URL to fix."""


def _tiny_png() -> bytes:
    from PIL import Image  # deferred: PIL is slow to import and only this check draws an image

    buffer = io.BytesIO()
    Image.new("RGB", (28, 28), (200, 30, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def check_judge(config: JudgeConfig) -> str:
    """Grade the tiny item once (see the module docstring); the line saying what answered."""
    variable = config.api_key_env
    if variable is not None and not os.environ.get(variable):
        raise JudgeUnusable(
            f"judge: {variable} is not set: the judge at {config.base_url} needs its API key there "
            f"(export {variable}=...; for a local judge without authentication set api_key_env: null)"
        )
    retries = max(config.max_retries, CHECK_RETRIES)
    judge = Judge(dataclasses.replace(config, cache_dir=None, max_retries=retries))
    start = time.monotonic()
    reply = run_sync(_call(judge))
    seconds = time.monotonic() - start
    where = f"judge {config.model!r} at {config.base_url}"
    try:
        integrity, knowledge = read_reply(reply.text)
    except ReplyError as error:
        return f"{where} answered in {seconds:.1f} s, but without a usable verdict ({error.reason})"
    return f"{where} answered in {seconds:.1f} s (integrity {integrity:g}, knowledge {knowledge:g})"


async def _call(judge: Judge) -> ChatReply:
    request = judge.request(ITEM, load_image(_tiny_png()))
    try:
        async with judge.client(JudgeUsage()) as client, asyncio.timeout(CHECK_DEADLINE_S):
            return await complete(client, **request)
    except ChatFailure as error:
        raise JudgeUnusable(failure_line(judge.config, error.reason)) from None
    except TimeoutError:
        raise JudgeUnusable(failure_line(judge.config, "deadline")) from None


def failure_line(config: JudgeConfig, reason: str) -> str:
    """The one-line error for a failed check call of ``reason`` (a ChatFailure reason)."""
    url, variable = f"{config.base_url.rstrip('/')}/chat/completions", config.api_key_env
    if reason in ("http_401", "http_403"):
        key = f"the key in {variable}" if variable else "the request without a key (api_key_env: null)"
        return f"judge: {url} refused {key} (HTTP {reason[5:]}): set a valid key and try again"
    if reason == "http_404":
        return (
            f"judge: {url} answered HTTP 404: model {config.model!r} is unknown there ({MODEL_VARIABLE}) "
            f"or the base URL is wrong ({URL_VARIABLE})"
        )
    if reason.startswith("http_"):
        return f"judge: {url} answered HTTP {reason[5:]} (after retries): check the judge server"
    return (
        f"judge: no answer from {url} ({reason}, retries included): is the server up and reachable from "
        f"this node ({URL_VARIABLE})?"
    )
