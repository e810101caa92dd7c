"""rewards/easyr1.py loaded by EasyR1's real AutoRewardManager (vendored snapshot), on CPU.

A real tokenizer (the tiny Qwen2.5-VL) encodes the rollouts into a DataProto batch exactly as EasyR1's rollout
does; the manager decodes them, calls our batch function with its kwargs and turns the dicts into the
token-level reward tensor and the `reward/<key>` metrics; the process reward talks to the fake judge server.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rewards.easyr1 as easyr1_rewards
from rewards.easyr1 import REWARD_TYPE
from rewards.judge import reset_judges
from rewards.watch import ZeroRewardWatch
from tools.dev.judge_server import FakeJudgeConfig, JudgeServer, fake_scores

REWARDS_FILE = Path(__file__).resolve().parent.parent / "rewards" / "easyr1.py"
THINK = "The image shows glandular cells; option A is excluded because it is typical of lymphoma."


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def answer(tmp_path_factory: pytest.TempPathFactory) -> str:
    image = tmp_path_factory.mktemp("easyr1") / "slide.png"
    Image.new("RGB", (16, 16), (200, 100, 150)).save(image)
    fields = {
        "ground_truth": "C) Adenocarcinoma",
        "question": "Which tumour is shown?",
        "options": ["A) Lymphoma", "B) Melanoma", "C) Adenocarcinoma", "D) Sarcoma"],
        "image": str(image),
        "id": "pathmmu-1",
    }
    return json.dumps(fields)


RESPONSES = [
    f"<think>{THINK}</think><answer>C) Adenocarcinoma</answer>",  # format, accuracy, full process
    "<think>Looks like a lymphoma.</think><answer>A) Lymphoma</answer>",  # format only
    "C) Adenocarcinoma",  # neither: not sent to the judge
    f"<think>{THINK} [[fault:500]]</think><answer>C) Adenocarcinoma</answer>",  # judge fails: fallback
]


def batch(tokenizer, responses: list[str], answer: str):
    """A DataProto as EasyR1's rollout leaves it: right-padded response ids, mask, ground truth column."""
    from verl.protocol import DataProto

    ids = [tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id] for text in responses]
    width = max(len(row) for row in ids) + 3
    tensor = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, token_ids in enumerate(ids):
        tensor[row, : len(token_ids)] = torch.tensor(token_ids)
        mask[row, : len(token_ids)] = 1
    ground_truth = np.array([answer] * len(responses), dtype=object)
    data = DataProto.from_single_dict(
        {"responses": tensor, "response_mask": mask, "ground_truth": ground_truth}
    )
    return data, [len(row) for row in ids]


def manager(function: str, kwargs: dict, tokenizer):
    from verl.workers.reward import AutoRewardManager, RewardConfig

    config = RewardConfig(reward_function=f"{REWARDS_FILE}:{function}", reward_function_kwargs=kwargs)
    config.post_init()
    return AutoRewardManager(config, tokenizer)


def test_outcome_reward_through_auto_reward_manager(tokenizer, answer: str) -> None:
    assert REWARD_TYPE == "batch"
    data, lengths = batch(tokenizer, RESPONSES, answer)
    reward_manager = manager("outcome_reward", {"format_weight": 0.5, "accuracy_weight": 1.0}, tokenizer)
    assert reward_manager.reward_type == "batch"
    reward_tensor, metrics = reward_manager.compute_reward(data)

    assert set(metrics) == {"overall", "format", "accuracy"}
    assert metrics["format"] == [1.0, 1.0, 0.0, 1.0]
    assert metrics["accuracy"] == [1.0, 0.0, 0.0, 1.0]
    assert metrics["overall"] == [1.5, 0.5, 0.0, 1.5]
    for row, length in enumerate(lengths):  # the score sits on the last response token, zeros elsewhere
        assert reward_tensor[row, length - 1].item() == metrics["overall"][row]
        assert reward_tensor[row].abs().sum().item() == pytest.approx(abs(metrics["overall"][row]))


def test_process_reward_through_auto_reward_manager(tokenizer, answer: str, tmp_path: Path) -> None:
    reset_judges()
    data, lengths = batch(tokenizer, RESPONSES, answer)
    with JudgeServer(FakeJudgeConfig(latency_ms=5)) as server:
        judge = {
            "base_url": server.url,
            "model": "fake-judge",
            "api_key_env": "PATHVLM_TEST_NO_SUCH_KEY",
            "temperature": 0.1,
            "max_tokens": 64,
            "timeout_s": 2.0,
            "concurrency": 4,
            "max_retries": 1,
            "batch_deadline_s": 30.0,
            "cache_dir": str(tmp_path / "judge-cache"),
            "transport_fallback_correct": 0.5,
            "transport_fallback_incorrect": 0.0,
        }
        kwargs = {"format_weight": 1.0, "accuracy_weight": 1.0, "process_weight": 0.5, "judge": judge}
        reward_tensor, metrics = manager("process_reward", kwargs, tokenizer).compute_reward(data)
        assert server.stats["requests"] == 2 + 2  # rollouts 0, 1 and the failing one twice; never rollout 2

    keys = {"overall", "format", "accuracy", "process", "integrity", "knowledge", "judge_failed"}
    assert set(metrics) == keys | {"judge_parse_failed", "judge_transport_failed"}
    first, second = fake_scores(RESPONSES[0]), fake_scores(RESPONSES[1])
    assert metrics["integrity"] == [first[0], second[0], 0.0, 0.5]
    assert metrics["knowledge"] == [first[1], second[1], 0.0, 0.5]
    assert metrics["process"] == pytest.approx([sum(first) / 2, sum(second) / 2, 0.0, 0.5])
    assert metrics["judge_failed"] == [0.0, 0.0, 0.0, 1.0]
    assert metrics["judge_transport_failed"] == [0.0, 0.0, 0.0, 1.0]
    assert metrics["judge_parse_failed"] == [0.0, 0.0, 0.0, 0.0]
    parts = zip(metrics["format"], metrics["accuracy"], metrics["process"], strict=True)
    expected = [fmt + acc + 0.5 * process for fmt, acc, process in parts]
    assert metrics["overall"] == pytest.approx(expected)
    for row, length in enumerate(lengths):
        assert reward_tensor[row, length - 1].item() == pytest.approx(metrics["overall"][row])
    reset_judges()


@pytest.mark.parametrize("error_rate", [1.0, 0.1])
def test_a_failing_judge_stops_the_run_in_the_reward_manager(
    tokenizer, answer: str, tmp_path: Path, error_rate: float
) -> None:
    """The judge health guard (rewards/judge/guard.py) raises out of EasyR1's reward manager, which is what
    stops an EasyR1 run, after judge_guard_steps steps with more than judge_max_failure_rate fallbacks."""
    from rewards.judge.guard import MARKER, JudgeOutage

    reset_judges()
    responses = [f"<think>{THINK} {n}</think><answer>C) Adenocarcinoma</answer>" for n in range(10)]
    data, _ = batch(tokenizer, responses, answer)
    with JudgeServer(FakeJudgeConfig(error_rate=error_rate, seed=3)) as server:
        judge = {"base_url": server.url, "model": "fake-judge", "api_key_env": None, "max_retries": 0}
        kwargs = {
            "judge": {**judge, "cache_dir": None},
            "judge_max_failure_rate": 0.2,
            "judge_guard_steps": 3,
        }
        reward_manager = manager("process_reward", kwargs, tokenizer)
        if error_rate < 0.2:
            for _ in range(4):
                assert len(reward_manager.compute_reward(data)[1]["process"]) == 10
            assert 0 < server.stats["fault_500"] < 40 * 0.2
            return
        for _ in range(2):
            assert reward_manager.compute_reward(data)[1]["judge_failed"] == [1.0] * 10
        with pytest.raises(JudgeOutage) as raised:
            reward_manager.compute_reward(data)
    message = str(raised.value)
    assert message.startswith(f"{MARKER} training stopped at reward call 3")
    assert "fell back/sent: 10/10, 10/10, 10/10" in message and "{'http_500': 10}" in message
    assert f"last error: http_500 from {server.url}" in message


RIGHT = f"<think>{THINK}</think><answer>C) Adenocarcinoma</answer>"


@pytest.mark.parametrize(
    ("responses", "warned"), [(["no format"] * 4, True), (["no format"] * 3 + [RIGHT], False)]
)
def test_easyr1_grpo_without_any_reward_is_warned_once(
    answer: str,
    responses: list[str],
    warned: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """EasyR1 has no trainer callback: the batch reward function warns after 5 steps of reward 0."""
    monkeypatch.setattr(easyr1_rewards, "_ZERO_REWARD", ZeroRewardWatch(k=5))
    for _ in range(6):
        easyr1_rewards.outcome_reward([{"response": r, "ground_truth": answer} for r in responses])
    warning = "warning: the reward is 0 on all of the first 5 steps"
    assert capsys.readouterr().err.count(warning) == int(warned)
