"""The judge client for the cross-modal process reward; see rewards/README.md.

| module | what |
|---|---|
| ``chat`` | chat completions with images on the ``openai`` SDK, its own retries and timeouts |
| ``judge`` | ``Judge`` (cache, semaphore, batch deadline, fallbacks, usage), ``get_judge`` |
| ``reply`` | the reply grammar: ``read_reply`` |
| ``config`` | ``JudgeConfig`` (validated, credential-free) |
| ``prompt`` | ``JudgePrompt``: the versioned prompt files in ``rewards/prompts/`` |
| ``cache`` | ``JudgeCache``: the persistent judgements |
| ``items`` | ``JudgeItem``, ``JudgeResult``, ``JudgeUsage`` |
| ``check``, ``guard`` | one real call before r1 trains; stopping a run whose judge keeps failing |
"""

from rewards.judge.config import JudgeConfig, credentials_in_url
from rewards.judge.items import JudgeItem, JudgeResult, JudgeUsage
from rewards.judge.judge import Judge, get_judge, reset_judges
from rewards.judge.prompt import JudgePrompt
from rewards.judge.reply import read_reply

__all__ = [
    "Judge",
    "JudgeConfig",
    "JudgeItem",
    "JudgePrompt",
    "JudgeResult",
    "JudgeUsage",
    "credentials_in_url",
    "get_judge",
    "read_reply",
    "reset_judges",
]
