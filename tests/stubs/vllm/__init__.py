"""vLLM 0.11's names imported by EasyR1's rollout (tests/stubs/README.md)."""

from typing import Any

CALLS: list[dict[str, Any]] = []  # LLM(**kwargs) of every engine built


class SamplingParams:
    """vLLM 0.11's SamplingParams fields that EasyR1's RolloutConfig shares or sets, and our backend sets."""

    def __init__(
        self,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
        ignore_eos: bool = False,
        max_tokens: int | None = 16,
        detokenize: bool = True,
        logit_bias: dict[int, float] | None = None,
        stop_token_ids: list[int] | None = None,
        skip_special_tokens: bool = True,
    ) -> None:
        self.n, self.temperature, self.top_p, self.top_k, self.seed = n, temperature, top_p, top_k, seed
        self.ignore_eos, self.max_tokens = ignore_eos, max_tokens
        self.detokenize, self.logit_bias = detokenize, logit_bias
        self.stop_token_ids, self.skip_special_tokens = stop_token_ids, skip_special_tokens


class LLM:
    def __init__(self, **kwargs: Any) -> None:
        CALLS.append(kwargs)

    def sleep(self, level: int = 1) -> None:
        pass


class RequestOutput:
    pass
