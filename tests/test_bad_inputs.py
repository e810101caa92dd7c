"""Hostile and nonsense inputs get one clear error, in linear time, never a silent wrong result (issue 26)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rewards.judge.cache import JudgeCache
from rewards.judge.reply import ReplyError, read_reply
from rewards.rules import parse_choice
from tests.test_data_real import fake_items
from tools.data.errors import DataError
from tools.data.split import split_items


@pytest.mark.parametrize("filler", ["\n", "\r\n", " \n", "\n "])
def test_parse_choice_is_linear_in_trailing_newlines(filler: str) -> None:
    """64,000 newlines after an answer took 47 s (the enumeration regex rescanned them from every line)."""
    text = "C) Adenocarcinoma" + filler * 64_000
    start = time.perf_counter()
    assert parse_choice(text) == ("C", "adenocarcinoma")
    assert parse_choice(text + "B) Other") is None  # a second option on its own line still counts
    assert time.perf_counter() - start < 1.0


def test_impossible_sizes_with_one_shared_question_fail_at_once() -> None:
    """5,385 items in one group: no sizes can work; the nearest-sizes search took 96 s to find none."""
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"nearest feasible --sizes: none, 3 splits need more than 1 groups"):
        split_items(fake_items([5385]), (3000, 1000), 0)
    assert time.perf_counter() - start < 1.0


def test_cached_verdicts_get_the_range_check_of_fresh_replies(tmp_path: Path) -> None:
    """A cache line with integrity 8.5 (or NaN, true, a string) is not returned: that item is judged again."""
    lines = [
        {"key": "good", "integrity": 0.6, "knowledge": 1},
        {"key": "big", "integrity": 8.5, "knowledge": 0.5},
        {"key": "negative", "integrity": 0.5, "knowledge": -0.4},
        {"key": "boolean", "integrity": True, "knowledge": 0.5},
        {"key": "text", "integrity": "0.5", "knowledge": 0.5},
        {"key": "missing", "integrity": 0.5},
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    text += '\n{"key": "nan", "integrity": NaN, "knowledge": 0.5}\n{"key": "torn", "integ'
    (tmp_path / "judge-host-1-abc.jsonl").write_text(text, encoding="utf-8")
    cache = JudgeCache(str(tmp_path))
    assert cache.entries == {"good": (0.6, 1.0)}
    assert cache.get("big") is None


@pytest.mark.parametrize(
    "reply",
    [
        '{"integrity_score": 0.2, "integrity_score": 0.9, "knowledge_score": 1.0}',
        'Verdict: {"integrity_score": 0.2, "knowledge_score": 1.0, "knowledge_score": 0}',
    ],
)
def test_a_verdict_with_a_duplicated_key_is_ambiguous(reply: str) -> None:
    with pytest.raises(ReplyError, match="ambiguous"):
        read_reply(reply)
    assert read_reply('{"integrity_score": 0.2, "integrity_score": 0.2, "knowledge_score": 1}') == (0.2, 1.0)
