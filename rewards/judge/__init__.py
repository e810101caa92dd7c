"""The judge client for the cross-modal process reward; see rewards/README.md.

| module | what |
|---|---|
| ``transport`` | the transport interface: ``ChatRequest`` -> ``ChatReply`` or ``TransportError`` |
| ``openai_transport`` | the OpenAI chat-completions transport (openai SDK) |
| ``client`` | ``ChatClient``: concurrency, retries with backoff / Retry-After, per-request and batch limits |
| ``limiter`` | ``PriorityLimiter``: retries ahead of fresh requests |
| ``reply`` | the reply grammar: ``read_reply`` / ``parse_judge_reply`` |
| ``config`` | ``JudgeConfig`` (validated, credential-free) |
| ``prompt`` | ``JudgePrompt``: the versioned prompt files in ``rewards/prompts/`` |
| ``cache``, ``usage``, ``images`` | cache shards, counters, image encoding |
| ``items``, ``loop`` | the data types, the background event loop |
| ``judge`` | ``Judge``, ``get_judge``, ``reset_judges`` |
"""

from rewards.judge.client import ChatClient
from rewards.judge.config import JudgeConfig, credentials_in_url
from rewards.judge.items import JudgeItem, JudgeResult
from rewards.judge.judge import Judge, get_judge, reset_judges
from rewards.judge.limiter import PriorityLimiter
from rewards.judge.openai_transport import OpenAITransport
from rewards.judge.prompt import JudgePrompt
from rewards.judge.reply import parse_judge_reply, read_reply
from rewards.judge.transport import ChatReply, ChatRequest, Transport, TransportError, retry_after_seconds
from rewards.judge.usage import JudgeUsage

__all__ = [
    "ChatClient",
    "ChatReply",
    "ChatRequest",
    "Judge",
    "JudgeConfig",
    "JudgeItem",
    "JudgePrompt",
    "JudgeResult",
    "JudgeUsage",
    "OpenAITransport",
    "PriorityLimiter",
    "Transport",
    "TransportError",
    "credentials_in_url",
    "get_judge",
    "parse_judge_reply",
    "read_reply",
    "reset_judges",
    "retry_after_seconds",
]
