"""Each engine's check of its recipe section against the engine's own schema (``llamafactory``, ``easyr1``;
``trl``: what the TRL GRPO engine honours of an ``easyr1:`` section) and the range rules they share
(``ranges``)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence what engines print while parsing (e.g. EasyR1's 'file not found') and undo the environment
    variables they set (transformers' TrainingArguments exports ACCELERATE_MIXED_PRECISION)."""
    saved = dict(os.environ)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)
