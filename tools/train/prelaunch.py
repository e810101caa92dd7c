"""What the runner checks and says before it launches an engine: r1's judge answers (one real call), and how
many GRPO prompts EasyR1's overlong filter will drop."""

from __future__ import annotations

from typing import Any

from rewards.judge import JudgeConfig
from rewards.judge import check as judge_check
from tools.common.grpo_rows import count_overlong, overlong_line
from tools.recipe.compose import stage_judge
from tools.train.run_spec import RunError


def check_judge(cfg: dict[str, Any], name: str) -> None:
    """Before a stage whose reward calls a judge (r1), before a model is loaded: one real judge call
    (``rewards.judge.check``); a missing key, a refused key, an unknown model or an unreachable URL stops
    the run here with one line naming the variable or the URL."""
    settings = stage_judge(cfg)
    if settings is None:
        return
    try:
        print(judge_check.check_judge(JudgeConfig.from_dict(settings)), flush=True)
    except judge_check.JudgeUnusable as error:
        raise RunError(f"{name}: {error}") from None


def announce_overlong(cfg: dict[str, Any], env: dict[str, str]) -> None:
    """Before a GRPO stage: print how many RL prompts ``data.filter_overlong_prompts`` drops (counted with the
    initial model's processor) and tag the W&B run in ``env`` with it (``overlong-prompts-N``)."""
    data = cfg.get("easyr1", {}).get("data")
    if cfg.get("engine") == "llamafactory" or not data or not data.get("filter_overlong_prompts", True):
        return
    dropped, total, longest = count_overlong(data, cfg["run"]["init_model"])
    print(f"{overlong_line(dropped, total, data['max_prompt_length'])} (longest: {longest})", flush=True)
    if dropped == total:
        raise RunError(
            f"every prompt is longer than easyr1.data.max_prompt_length={data['max_prompt_length']} "
            f"(longest {longest} tokens): raise it or lower easyr1.data.max_pixels"
        )
    env["WANDB_TAGS"] += f",overlong-prompts-{dropped}"
