"""Thin TRL ``GRPOTrainer`` adapters over the same rewards (CPU profile): no second implementation.

``make_reward_funcs("./rewards/easyr1.py:process_reward", kwargs)`` returns the reward functions named
``format``, ``accuracy`` (and ``process``) and their weights, for ``GRPOTrainer(reward_funcs=...)`` and
``GRPOConfig(reward_weights=...)``; TRL then logs ``rewards/<name>/mean`` and sums them with the weights,
which is EasyR1's ``overall``. ``kwargs`` is EasyR1's ``reward_function_kwargs``, checked against the
signature of the EasyR1 function it names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from rewards import easyr1
from rewards.process import process_rewards
from rewards.rules import accuracy_reward, format_reward

RewardFunc = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a plain string, or the last message of a conversational completion
    (``[{"role": "assistant", "content": str | [{"type": "text", "text": ...}]}]``)."""
    if isinstance(completion, str):
        return completion
    content = completion[-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _answers(kwargs: dict[str, Any], count: int) -> Sequence[str]:
    answers = kwargs.get("answer")
    if answers is None or len(answers) != count:
        raise ValueError(
            "rewards.trl: the dataset needs an 'answer' column (the JSON of EasyR1's answer column), "
            f"one per completion; got {None if answers is None else len(answers)} for {count} completions"
        )
    return answers


def make_reward_funcs(reward_function: str, kwargs: dict[str, Any]) -> tuple[list[RewardFunc], list[float]]:
    """TRL reward functions and weights for an EasyR1 ``reward_function`` string and its kwargs."""
    name = reward_function.rsplit(":", 1)[-1]
    if name not in ("outcome_reward", "process_reward"):
        raise ValueError(
            f"rewards.trl: unknown reward function {reward_function!r}; "
            "expected ...:outcome_reward or ...:process_reward"
        )
    try:
        bound = inspect.signature(getattr(easyr1, name)).bind([], **dict(kwargs or {}))
    except TypeError as error:
        raise ValueError(
            f"rewards.trl: reward_function_kwargs {dict(kwargs)} do not fit {name}: {error}"
        ) from None
    bound.apply_defaults()
    settings = bound.arguments

    def format(completions: list[Any], **_: Any) -> list[float]:
        return [format_reward(completion_text(c)) for c in completions]

    def accuracy(completions: list[Any], **columns: Any) -> list[float]:
        answers = _answers(columns, len(completions))
        return [accuracy_reward(completion_text(c), a) for c, a in zip(completions, answers, strict=True)]

    def process(completions: list[Any], **columns: Any) -> list[float]:
        texts = [completion_text(c) for c in completions]
        answers = _answers(columns, len(texts))
        rules = format(texts), accuracy(texts, answer=answers)
        guard = (settings["judge_max_failure_rate"], settings["judge_guard_steps"])
        return [r.process for r in process_rewards(texts, answers, *rules, settings["judge"], guard)]

    funcs: list[RewardFunc] = [format, accuracy]
    weights = [float(settings["format_weight"]), float(settings["accuracy_weight"])]
    if name == "process_reward":
        funcs.append(process)
        weights.append(float(settings["process_weight"]))
    return funcs, weights
