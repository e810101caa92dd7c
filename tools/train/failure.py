"""What to do after an engine failed, by cause: read from its exit code and the end of its log.

Re-running resumes from the last checkpoint, which helps after a crash or an interruption but not after a
refused configuration (fix the value), a damaged checkpoint (move it aside) or running out of memory
(lower the batch, or a leaner profile).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

LOSS_GUARD_MARKER = "loss guard:"  # how the loss guard's error begins (engines.loss_guard)
RESUMES = "running the same command again resumes from the last checkpoint"
_TAIL_BYTES = 64 << 10
_OOM = re.compile(r"OutOfMemoryError|CUDA out of memory|Cannot allocate memory|^MemoryError", re.MULTILINE)
_DAMAGED = re.compile(
    r"JSONDecodeError|SafetensorError|Error while deserializing|PytorchStreamReader failed|"
    r"invalid load key|unexpected EOF|EOFError|file is corrupt|incomplete metadata"
)
_CHECKPOINT = re.compile(r"[^\s'\"]*(?:checkpoint-\d+|global_step_\d+)")
_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception))\b:?.*$", re.MULTILINE)
_CONFIG_ERRORS = {
    "ValueError",
    "TypeError",
    "KeyError",
    "AssertionError",
    "ConfigAttributeError",
    "ConfigKeyError",
    "ConfigTypeError",
    "MissingMandatoryValue",
    "ValidationError",
}


def advice(code: int, log: Path, offset: int = 0, resumed_from: Path | None = None) -> str:
    """The cause of an engine's exit ``code`` and what to do about it, in one sentence."""
    tail = _tail(log, offset)
    errors = list(_ERROR_LINE.finditer(tail))
    last = errors[-1] if errors else None
    if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return (
            "the engine was killed (SIGKILL, most often the out-of-memory killer): lower the batch size per "
            f"device (recipe or --set) or use a leaner profile (--profile lean); {RESUMES}"
        )
    if _OOM.search(tail):
        return (
            "the engine ran out of memory: lower the batch size per device (recipe or --set) or use a leaner "
            f"profile (--profile lean), then run again ({RESUMES})"
        )
    if _DAMAGED.search(tail) and (resumed_from or _CHECKPOINT.search(tail)):
        checkpoint = str(resumed_from or _CHECKPOINT.findall(tail)[-1])
        return (
            f"a damaged checkpoint ({last.group(0).strip() if last else 'unreadable'}): move {checkpoint} "
            "aside (e.g. add .damaged to its name) and run the same command again: it resumes from the "
            "checkpoint before"
        )
    if last is not None and last.group(1) in _CONFIG_ERRORS:
        return (
            f"the engine refused its configuration ({last.group(0).strip()}): fix the value it names in the "
            "recipe or with --set KEY=VALUE; running it unchanged fails the same way"
        )
    number = -code if code < 0 else code - 128
    if number in {sig.value for sig in signal.Signals}:
        return f"the engine was stopped by signal {signal.Signals(number).name}: {RESUMES}"
    crash = f" ({last.group(0).strip()})" if last else ""
    return f"the engine crashed{crash}: {RESUMES}"


def _tail(log: Path, offset: int, limit: int | None = _TAIL_BYTES) -> str:
    """What this attempt wrote to ``log`` (from byte ``offset``); at most the last ``limit`` bytes."""
    if not log.is_file():
        return ""
    with log.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(offset if limit is None else max(offset, size - limit))
        return handle.read().decode("utf-8", errors="replace")


def guard_line(log: Path, offset: int, marker: str) -> str | None:
    """The message of the guard whose error begins with ``marker`` (the loss guard's, the judge guard's) in
    an engine log after byte ``offset`` (where this attempt began), if any."""
    lines = [line for line in _tail(log, offset, limit=None).splitlines() if marker in line]
    return lines[-1][lines[-1].index(marker) :].strip() if lines else None
