"""Persistent judgements: append-only JSONL shards, one per writing process, that survive any I/O fault."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

from rewards.judge.reply import ReplyError, score_value

logger = logging.getLogger(__name__)


def _score(value: object) -> float:
    """A cached score under the rule of a fresh reply (``score_value``): a number in [0, 1], never clamped."""
    if not isinstance(value, int | float):
        raise ReplyError("not_a_number")
    return score_value(value)


class JudgeCache:
    """Judgements under ``directory``: each process appends to its own shard (no locks, safe on shared
    file systems) and reads every shard when it starts; a torn last line from a killed process is skipped,
    and so is an entry whose scores a fresh reply could not give (outside [0, 1], not a number): that item
    is judged again.
    Entries hold the key hash and the scores only, never the prompt or a credential.

    I/O never raises: an unreadable or unwritable directory leaves the cache in memory only, the judge's
    scores survive, ``errors`` counts the failed operations and the first one is logged.
    """

    def __init__(self, directory: str | None) -> None:
        self.entries: dict[str, tuple[float, float]] = {}
        self.errors = 0
        self._pending: list[str] = []
        self._shard = f"judge-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}.jsonl"
        self.directory = None if directory is None else Path(directory).expanduser()
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for shard in sorted(self.directory.glob("judge-*.jsonl")):
                self._read(shard)
        except OSError as error:
            self._failed("read", error)

    def _read(self, shard: Path) -> None:
        rejected = 0
        for line in shard.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                self.entries[str(record["key"])] = (_score(record["integrity"]), _score(record["knowledge"]))
            except (ValueError, KeyError, TypeError):
                rejected += line.strip() != ""
        if rejected:
            logger.warning("judge cache: %s: %d unreadable or out-of-range line(s) ignored", shard, rejected)

    def _failed(self, what: str, error: OSError) -> None:
        self.errors += 1
        if self.errors == 1:
            logger.warning(
                "judge cache: cannot %s %s (%s); judgements are kept in memory, later failures are counted",
                what,
                self.directory,
                error,
            )

    def get(self, key: str) -> tuple[float, float] | None:
        return self.entries.get(key)

    def put(self, key: str, scores: tuple[float, float]) -> None:
        self.entries[key] = scores
        if self.directory is not None:
            self._pending.append(json.dumps({"key": key, "integrity": scores[0], "knowledge": scores[1]}))

    def flush(self) -> None:
        """Append the pending entries to this process's shard (kept for the next flush if that fails)."""
        if self._pending and self._append(self._shard, "\n".join(self._pending)):
            self._pending.clear()

    def append_usage(self, record: dict) -> None:
        """One line of ``usage.jsonl`` beside the shards."""
        self._append("usage.jsonl", json.dumps(record))

    def _append(self, name: str, text: str) -> bool:
        """Append ``text`` and a newline to the file ``name`` in the directory; False when not written."""
        if self.directory is None:
            return False
        try:
            with (self.directory / name).open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as error:
            self._failed("write", error)
            return False
        return True
