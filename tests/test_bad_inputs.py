"""Hostile and nonsense inputs get one clear error, in linear time, never a silent wrong result (issue 26)."""

from __future__ import annotations

import time

import pytest

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
