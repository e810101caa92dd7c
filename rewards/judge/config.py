"""Judge settings (``reward_function_kwargs.judge``): validated, and never holding a credential."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rewards.judge.items import JudgeResult

DEFAULT_PROMPT_VERSION = "judge_v2"
_SECRET_PARAM = re.compile(r"(key|token|secret|password|passwd|auth|sig)", re.IGNORECASE)
# A path segment shaped like a provider's API key (OpenAI, Hugging Face, GitHub, Groq, xAI, Google).
_KEY_SEGMENT = re.compile(r"^(sk-|sk_|hf_|ghp_|gsk_|xai-|AIza)[A-Za-z0-9_-]{8,}$")
# Keys of earlier versions, refused with what replaced them.
SDK_BACKOFF = "the openai SDK backs off itself (0.5 s doubling up to 8 s, or the server's Retry-After)"
RETIRED = {"backoff_s": SDK_BACKOFF, "backoff_max_s": SDK_BACKOFF}


def credentials_in_url(url: str) -> bool:
    """True when ``url`` carries a credential: ``user:password@``, a key-like query parameter or a key-like
    path segment (``http://host/sk-.../v1``)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    if not parts.scheme or not parts.netloc:
        return False
    if parts.username is not None or parts.password is not None:
        return True
    if any(_KEY_SEGMENT.match(segment) for segment in parts.path.split("/")):
        return True
    return any(_SECRET_PARAM.search(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True))


@dataclass(frozen=True)
class JudgeConfig:
    """Judge settings; the key itself only comes from the environment variable named by ``api_key_env``
    (null: the endpoint needs no key, e.g. a local judge without authentication).

    Fallbacks: a *parse* failure (the judge replied without a usable verdict) gets the paper's rule
    (0.5 per dimension if the answer was correct, else 0); a *transport* failure (no reply to read: HTTP
    errors, timeouts, the batch deadline, an unreadable image or answer) gets ``transport_fallback_*``.
    """

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o"
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: float = 0.1
    max_tokens: int = 256
    timeout_s: float = 60.0
    concurrency: int = 32
    max_retries: int = 4
    batch_deadline_s: float = 600.0
    cache_dir: str | None = ".cache/judge"
    parse_fallback_correct: float = 0.5
    parse_fallback_incorrect: float = 0.0
    transport_fallback_correct: float = 0.5
    transport_fallback_incorrect: float = 0.0
    prompt_version: str = DEFAULT_PROMPT_VERSION
    prompt_usd_per_mtok: float = 0.0
    completion_usd_per_mtok: float = 0.0

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> JudgeConfig:
        """Validated config; unknown keys, literal keys (``api_key``) and URLs with credentials are errors
        that name the key (never its value)."""
        values = dict(values or {})
        if secrets := [key for key in values if "key" in key.lower() and key != "api_key_env"]:
            raise ValueError(
                f"judge config: {secrets} not allowed: put the API key in an environment variable "
                "and name that variable with api_key_env"
            )
        if retired := [f"{key}: {RETIRED[key]}" for key in sorted(RETIRED) if key in values]:
            raise ValueError(f"judge config: keys no longer read, remove them ({'; '.join(retired)})")
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(values) - known):
            raise ValueError(f"judge config: unknown keys {unknown}; expected some of {sorted(known)}")
        base_url = values.get("base_url", cls.base_url)
        if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError("judge config: base_url must be an http:// or https:// URL")
        if credentials_in_url(base_url):
            raise ValueError(
                "judge config: base_url carries a credential (user:password@, a key in the path or query): "
                "put the key in an environment variable and name that variable with api_key_env"
            )
        config = cls(**values)
        limits = {
            "concurrency >= 1": config.concurrency >= 1,
            "max_retries >= 0": config.max_retries >= 0,
            "timeout_s > 0": config.timeout_s > 0,
            "batch_deadline_s > 0": config.batch_deadline_s > 0,
        }
        if problems := [limit for limit, ok in limits.items() if not ok]:
            raise ValueError(f"judge config: expected {', '.join(problems)}")
        return config

    def fallback(self, correct: bool, kind: str) -> JudgeResult:
        """The result of a failed judgement of ``kind`` ("parse" or "transport"): one score per dimension."""
        if kind == "parse":
            value = self.parse_fallback_correct if correct else self.parse_fallback_incorrect
        else:
            value = self.transport_fallback_correct if correct else self.transport_fallback_incorrect
        return JudgeResult(value, value, failure=kind)
