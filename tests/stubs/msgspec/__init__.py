"""msgspec (a vLLM dependency): EasyR1's vllm_utils declares a field with it (tests/stubs/README.md)."""

from typing import Any


def field(default: Any = None, **kwargs: Any) -> Any:
    return default
