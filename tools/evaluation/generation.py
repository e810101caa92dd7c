"""What every evaluation backend takes and returns (``Request`` in, ``Generation`` out), and their names.

Shared by the local backends (``eval_backends.py``) and the API backend (``eval_api.py``); ``evaluate.py``
picks one (``make_backend``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

BACKENDS = ("hf", "vllm", "openai")
LOCAL_BACKENDS = ("hf", "vllm")
DEFAULT_BATCH_SIZE = {"hf": 8, "vllm": 512, "openai": 64}


@dataclass(frozen=True)
class Request:
    """One item to answer: the ``build_prompt`` text and the image file it is about."""

    prompt: str
    image: str


@dataclass(frozen=True)
class Generation:
    text: str
    output_tokens: int


class Backend(Protocol):
    """What ``evaluate`` calls on a backend."""

    def render(self, prompt: str) -> str:
        """The exact text the model sees (hashed into ``prompt_sha256``)."""

    def generate(self, requests: Sequence[Request]) -> Sequence[Generation | None]:
        """One greedy answer per request, in order (``None``: an API item without a reply)."""

    def generate_samples(self, requests: Sequence[Request]) -> list[list[Generation]]:
        """``samples`` answers per request (pass@k; local models only)."""

    def accounting(self) -> dict[str, Any]:
        """Usage of an API backend (calls, tokens, cost); empty for local models."""

    def close(self) -> None:
        """Release what the backend holds."""
