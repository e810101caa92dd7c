"""The versioned judge prompt: ``rewards/prompts/<version>.md`` split into its system and user parts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rewards.judge.items import JudgeItem

PROMPT_DIR = Path(__file__).resolve().parents[1] / "prompts"
PROMPT_FIELDS = ("question", "standard_answer", "correctness", "response", "nonce")


@dataclass(frozen=True)
class JudgePrompt:
    """One prompt version; ``sha256`` (of the file) feeds the cache key."""

    version: str
    system: str
    user: str
    sha256: str

    @classmethod
    def load(cls, version: str) -> JudgePrompt:
        path = PROMPT_DIR / f"{version}.md"
        if not path.is_file():
            available = sorted(path.stem for path in PROMPT_DIR.glob("judge_v*.md"))
            raise ValueError(f"judge prompt {version!r}: no {path}; available: {available}")
        text = path.read_text(encoding="utf-8")
        body = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
        parts = re.split(r"^# (System|User)\s*$", body, flags=re.MULTILINE)
        sections = dict(zip(parts[1::2], (part.strip() for part in parts[2::2]), strict=True))
        if set(sections) != {"System", "User"}:
            raise ValueError(f"{path}: expected exactly a '# System' and a '# User' section")
        fields = set(re.findall(r"\{\{(\w+)\}\}", sections["User"]))
        if fields != set(PROMPT_FIELDS):
            raise ValueError(f"{path}: '# User' has {sorted(fields)}, expected {sorted(PROMPT_FIELDS)}")
        return cls(version, sections["System"], sections["User"], hashlib.sha256(text.encode()).hexdigest())

    def render_user(self, item: JudgeItem) -> str:
        """The user text; the untrusted output sits between markers carrying a nonce it cannot contain."""
        nonce = hashlib.sha256(item.response.encode()).hexdigest()[:16]
        fields = {
            "question": "\n".join([item.question.strip(), *item.options]),
            "standard_answer": item.ground_truth.strip(),
            "correctness": "correct" if item.correct else "incorrect",
            "response": item.response,
            "nonce": nonce,
        }
        return re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)], self.user)
