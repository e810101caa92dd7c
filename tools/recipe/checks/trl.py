"""What the TRL GRPO engine (``tools.train.engines.trl_grpo``, the cpu profile's) honours of an ``easyr1:``
section: EasyR1's own checks first, then every key whose value TRL cannot reproduce, named."""

from __future__ import annotations

import json
from typing import Any

from tools.recipe.checks import easyr1

LOSS_TYPES = {"token": "dapo", "seq": "grpo"}  # EasyR1 loss_avg_mode -> TRL loss_type
# EasyR1 keys this engine honours at these values only (GRPO as LOSS_TYPES maps it); any other value is
# refused with the key named, so a DAPO-like recipe cannot train as plain GRPO here without a word.
HONOURED = (
    (("algorithm", "adv_estimator"), ("grpo",), "TRL's GRPOTrainer computes GRPO advantages only"),
    (("algorithm", "online_filtering"), (False,), "TRL has no online (DAPO) filtering of prompt groups"),
    (("data", "mini_rollout_batch_size"), (None,), "TRL does not over-generate prompts for online filtering"),
    (("algorithm", "kl_penalty"), ("low_var_kl",), "TRL's KL term is the k3 (low_var_kl) estimator"),
    (("algorithm", "kl_type"), ("fixed",), "TRL's beta is a fixed coefficient"),
    (("worker", "actor", "loss_avg_mode"), tuple(LOSS_TYPES), "TRL's loss types map only these"),
    (("trainer", "nnodes"), (1,), "the TRL engine trains in one process"),
    (("trainer", "n_gpus_per_node"), (1,), "the TRL engine trains in one process"),
)


def validate(section: dict[str, Any]) -> list[str]:
    """EasyR1's own checks of the section (the same keys and batch rules), then every key whose value this
    engine cannot honour."""
    problems = easyr1.validate(section)
    for keys, honoured, why in HONOURED:
        node: Any = section
        for key in keys:
            node = node.get(key, honoured[0]) if isinstance(node, dict) else honoured[0]
        if node not in honoured:
            shown = " or ".join(json.dumps(value) for value in honoured)
            problems.append(
                f"{'.'.join(keys)}: {json.dumps(node)}, the TRL GRPO engine honours only {shown} ({why})"
            )
    algorithm = section.get("algorithm", {})
    if not algorithm.get("disable_kl") and algorithm.get("use_kl_loss") is False:
        problems.append(
            "algorithm.use_kl_loss: false, the TRL GRPO engine honours only true (its KL is a loss term, "
            "not a reward penalty) unless algorithm.disable_kl is true"
        )
    return problems
