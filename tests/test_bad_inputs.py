"""Hostile and nonsense inputs get one clear error, in linear time, never a silent wrong result (issue 26)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rewards.judge.cache import JudgeCache
from rewards.judge.reply import ReplyError, read_reply
from rewards.rules import parse_choice
from tests.test_data_real import fake_items
from tools.cli import main
from tools.data.errors import DataError
from tools.data.split import split_items
from tools.train import recipes, registry
from tools.train.engines import (
    easyr1_check,
    llamafactory_check,
    prepare_trainer_resume,
    trainer_checkpoints,
)
from tools.train.engines.ranges import numeric_leaves, rule_for
from tools.train.engines.trl_grpo import grpo_arguments
from tools.train.runner import RunError, execute, make_plan


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


def _composed_sections() -> Iterator[tuple[str, dict[str, Any]]]:
    for stage in registry.stages():
        for profile in registry.profiles():
            cfg = recipes.to_container(recipes.compose(stage, "7b", profile))
            yield cfg["engine"], cfg[cfg["engine"]]


def test_every_numeric_recipe_key_has_a_range_rule() -> None:
    tables = {"llamafactory": llamafactory_check.RANGES, "easyr1": easyr1_check.RANGES}
    missing = {
        f"{engine}.{key}"
        for engine, section in _composed_sections()
        for key, _ in numeric_leaves(section)
        if rule_for(key, tables[engine]) is None
    }
    assert not missing


NONSENSE = [
    ("alpha", "cpu", "llamafactory.learning_rate=-1", "learning_rate: -1, expected a finite number > 0"),
    ("alpha", "cpu", "llamafactory.learning_rate=.inf", "learning_rate: inf, expected a finite number > 0"),
    ("alpha", "h20x4", "llamafactory.num_train_epochs=0", "num_train_epochs: 0"),
    ("alpha", "cpu", "llamafactory.num_train_epochs=-3", "num_train_epochs: -3"),
    ("alpha", "cpu", "llamafactory.per_device_train_batch_size=0", "per_device_train_batch_size: 0"),
    ("alpha", "cpu", "llamafactory.gradient_accumulation_steps=0", "gradient_accumulation_steps: 0"),
    ("alpha", "cpu", "llamafactory.cutoff_len=0", "cutoff_len: 0, expected an integer >= 1"),
    ("alpha", "cpu", "llamafactory.max_steps=0", "max_steps: 0, expected an integer >= 1 or -1"),
    ("beta", "cpu", "easyr1.trainer.max_steps=0", "trainer.max_steps: 0, expected an integer >= 1"),
    ("beta", "h20x4", "easyr1.trainer.max_steps=-5", "trainer.max_steps: -5"),
    ("beta", "cpu", "easyr1.data.rollout_batch_size=0", "data.rollout_batch_size: 0"),
    ("beta", "h20x4", "easyr1.algorithm.kl_coef=-1", "kl_coef: -1.0, expected a finite number >= 0"),
    ("beta", "cpu", "easyr1.worker.rollout.temperature=-1", "worker.rollout.temperature: -1"),
    ("beta", "cpu", "easyr1.data.max_response_length=0", "data.max_response_length: 0"),
    ("beta", "h20x4", "easyr1.trainer.save_freq=0", "trainer.save_freq: 0, expected an integer >= 1 or -1"),
    ("beta", "cpu", "easyr1.data.max_pixels=0", "data.max_pixels: 0, expected an integer >= 784"),
    ("beta", "cpu", "easyr1.worker.actor.optim.lr=nan", "worker.actor.optim.lr: nan"),
    ("beta", "h20x4", "easyr1.worker.actor.optim.lr=-1e-6", "worker.actor.optim.lr: -1e-06"),
]


@pytest.mark.parametrize(("stage", "profile", "override", "message"), NONSENSE)
def test_nonsense_values_are_refused_naming_the_key_and_range(
    stage: str, profile: str, override: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recipe", stage, "--profile", profile, "--set", override]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_trl_engine_does_not_read_max_steps_0_as_unset() -> None:
    cfg = recipes.to_container(recipes.compose("beta", "tiny", "cpu", ["easyr1.trainer.max_steps=0"]))
    args = grpo_arguments(cfg["easyr1"], Path("out"), "tiny-beta")
    assert args["max_steps"] == 0
    assert "num_train_epochs" not in args


def _trainer_state(directory: Path, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "trainer_state.json").write_text(text, encoding="utf-8")


def test_a_torn_trainer_state_is_set_aside_and_the_previous_checkpoint_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _trainer_state(tmp_path / "checkpoint-10", json.dumps({"global_step": 10, "log_history": []}))
    _trainer_state(tmp_path / "checkpoint-20", '{"global_step": 20, "log_hist')
    assert prepare_trainer_resume(tmp_path) == tmp_path / "checkpoint-10"
    assert (tmp_path / "checkpoint-20.torn" / "trainer_state.json").is_file()
    assert not (tmp_path / "checkpoint-20").exists()
    assert "checkpoint-20/trainer_state.json is torn or unreadable: set aside as" in capsys.readouterr().out
    assert trainer_checkpoints(tmp_path) == [(10, tmp_path / "checkpoint-10")]


def test_a_run_of_0_optimizer_steps_is_never_done(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """num_train_epochs=0 once exited 0 and wrote DONE with the base model exported as alpha."""
    monkeypatch.setenv("PATHVLM_TINY_MODEL", str(tiny_model))
    plan = make_plan("alpha", "tiny", "cpu", tmp_path / "runs", [], dry_run=True)
    output = Path(plan.cfg["llamafactory"]["output_dir"])
    _trainer_state(output, json.dumps({"global_step": 0, "log_history": []}))
    (output / "config.json").write_text("{}", encoding="utf-8")  # what a finished Trainer leaves
    with pytest.raises(RunError, match="after 0 optimizer steps"):
        execute(plan)
    assert not (plan.stage_dir / "DONE").exists()
