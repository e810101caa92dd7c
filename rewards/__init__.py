"""PathVLM-R1 rewards: format and accuracy (rules), cross-modal process reward (judge), trainer adapters.

``rewards.easyr1`` holds EasyR1's batch reward functions and ``rewards.trl`` thin TRL adapters over them;
see rewards/README.md for the overall formula and its weights.
"""

from rewards.rules import accuracy_reward, extract_answer, format_reward, parse_choice

__all__ = ["accuracy_reward", "extract_answer", "format_reward", "parse_choice"]
