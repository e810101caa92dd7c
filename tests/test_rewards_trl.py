"""rewards/trl.py: TRL GRPOTrainer reward functions over the same rewards as EasyR1's batch functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from rewards.easyr1 import outcome_reward, process_reward
from rewards.judge import reset_judges
from rewards.trl import completion_text, make_reward_funcs
from tools.dev.judge_server import FakeJudgeConfig, JudgeServer

THINK = "The image shows glandular cells; option A is excluded because it is typical of lymphoma."
TEXTS = [
    f"<think>{THINK}</think><answer>C) Adenocarcinoma</answer>",
    "<think>Small round cells.</think><answer>A) Lymphoma</answer>",
    "C) Adenocarcinoma",
]


@pytest.fixture(scope="module")
def answer(tmp_path_factory: pytest.TempPathFactory) -> str:
    image = tmp_path_factory.mktemp("trl") / "slide.png"
    Image.new("RGB", (16, 16), (90, 40, 160)).save(image)
    return json.dumps(
        {"ground_truth": "C) Adenocarcinoma", "question": "Which tumour?", "image": str(image), "id": "t1"}
    )


def trl_call(func, completions: list, answer: str) -> list[float]:
    """Call a reward function the way TRL 0.24's GRPOTrainer._calculate_rewards does."""
    return func(
        prompts=[[{"role": "user", "content": "question"}]] * len(completions),
        completions=completions,
        completion_ids=[[1, 2, 3]] * len(completions),
        answer=[answer] * len(completions),
        image=[None] * len(completions),
        trainer_state=None,
    )


def test_outcome_funcs_match_the_easyr1_function(answer: str) -> None:
    kwargs = {"format_weight": 0.2, "accuracy_weight": 0.8}
    funcs, weights = make_reward_funcs("./rewards/easyr1.py:outcome_reward", kwargs)
    assert [func.__name__ for func in funcs] == ["format", "accuracy"]
    assert weights == [0.2, 0.8]
    conversational = [[{"role": "assistant", "content": text}] for text in TEXTS]
    easyr1 = outcome_reward([{"response": t, "ground_truth": answer} for t in TEXTS], **kwargs)
    assert trl_call(funcs[0], conversational, answer) == [s["format"] for s in easyr1] == [1.0, 1.0, 0.0]
    assert trl_call(funcs[1], TEXTS, answer) == [s["accuracy"] for s in easyr1] == [1.0, 0.0, 0.0]


def test_process_func_matches_the_easyr1_function(answer: str, tmp_path: Path) -> None:
    reset_judges()
    with JudgeServer(FakeJudgeConfig(latency_ms=2)) as server:
        judge = {"base_url": server.url, "model": "fake-judge", "cache_dir": str(tmp_path)}
        kwargs = {"format_weight": 1.0, "accuracy_weight": 2.0, "process_weight": 0.5, "judge": judge}
        funcs, weights = make_reward_funcs("rewards/easyr1.py:process_reward", kwargs)
        assert [func.__name__ for func in funcs] == ["format", "accuracy", "process"]
        assert weights == [1.0, 2.0, 0.5]
        process = trl_call(funcs[2], TEXTS, answer)
        easyr1 = process_reward([{"response": t, "ground_truth": answer} for t in TEXTS], **kwargs)
    assert process == [s["process"] for s in easyr1]
    assert process[0] == 1.0 and process[2] == 0.0 and easyr1[1]["judge_failed"] == 0.0
    reset_judges()


def test_defaults_and_errors() -> None:
    funcs, weights = make_reward_funcs("outcome_reward", {})
    assert len(funcs) == 2 and weights == [1.0, 1.0]
    with pytest.raises(ValueError, match="unknown reward function"):
        make_reward_funcs("./rewards/easyr1.py:main", {})
    with pytest.raises(ValueError, match="process_weight"):
        make_reward_funcs("./rewards/easyr1.py:outcome_reward", {"process_weight": 1.0})
    with pytest.raises(ValueError, match="'answer' column"):
        funcs[1](prompts=["p"], completions=["c"], completion_ids=[[1]])


def test_completion_text_shapes() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "chat"}]) == "chat"
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert completion_text([{"role": "assistant", "content": parts}]) == "ab"
