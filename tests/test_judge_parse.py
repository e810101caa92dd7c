"""Judge reply and Retry-After parsing, table-driven: what real servers send, and what must be rejected."""

from __future__ import annotations

import email.utils
import time

import pytest

from rewards.process import parse_judge_reply, retry_after_seconds

CASES = [
    ('{"integrity_score": 0.6, "knowledge_score": 1.0}', (0.6, 1.0), "bare JSON"),
    ('  {"knowledge_score": 0.2, "integrity_score": 1}  ', (1.0, 0.2), "key order, int, whitespace"),
    ('```json\n{"integrity_score": 0.6, "knowledge_score": 0.6}\n```', (0.6, 0.6), "fenced json block"),
    ('```\n{"integrity_score": 0.2, "knowledge_score": 0.6}\n```', (0.2, 0.6), "fenced block, no language"),
    ('My grading: {"integrity_score": 0.6, "knowledge_score": 0.2}. Done.', (0.6, 0.2), "inside prose"),
    ('{"integrity_score": "0.6", "knowledge_score": " 1.0 "}', (0.6, 1.0), "numeric strings"),
    ('{"integrity_score": 1.7, "knowledge_score": -0.3}', (1.0, 0.0), "out of range: clamped"),
    ('{"scores": {"integrity_score": 0.2, "knowledge_score": 0.2}}', (0.2, 0.2), "nested object"),
    ('{"note": "x"} then {"integrity_score": 0.6, "knowledge_score": 0.6}', (0.6, 0.6), "second object"),
    ("integrity_score: 0.6\nknowledge_score: 0.2", (0.6, 0.2), "key: number lines"),
    ("Integrity: 0.6, Knowledge = 1", (0.6, 1.0), "key = number, short keys"),
    ('{"integrity_score": 0.6, "knowledge_score": 0.2', (0.6, 0.2), "truncated JSON: key/number fallback"),
    ('{"integrity_score": 0.6}', None, "knowledge missing"),
    ('{"integrity_score": 0.6, "knowledge_score": "high"}', None, "not a number"),
    ('{"integrity_score": 0.6, "knowledge_score": NaN}', None, "NaN"),
    ('{"integrity_score": Infinity, "knowledge_score": 0.2}', None, "infinity"),
    ('{"integrity_score": true, "knowledge_score": 0.2}', None, "boolean"),
    ('{"integrity_score": null, "knowledge_score": 0.2}', None, "null"),
    ("The reasoning is excellent.", None, "prose only"),
    ("", None, "empty"),
]


@pytest.mark.parametrize(("reply", "expected", "case"), CASES, ids=[c[2] for c in CASES])
def test_parse_judge_reply(reply: str, expected: tuple[float, float] | None, case: str) -> None:
    assert parse_judge_reply(reply) == expected, case


def test_parse_judge_reply_rejects_non_text() -> None:
    assert parse_judge_reply(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "150", "retry-after": "9"}, 0.15),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_seconds(headers: dict | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_http_date() -> None:
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after_seconds({"retry-after": date}) <= 31
