"""Imported for its side effect, before torch and transformers, by every process that will use wandb.

wandb's pydantic models read their fields' docstrings by walking the import stack with
``inspect.getmodule``, which scans all of ``sys.modules`` for each frame that is not a file (pydantic 2.12
on Python < 3.13). With torch and transformers loaded (thousands of modules) that makes ``import wandb``
take 20-40 s instead of 5 s. Measured on 2 cores: LLaMA-Factory's ``llamafactory.train.tuner`` imports in
55 s, in 20 s with wandb first; the imports of the TRL engine in 47 s, in 19 s.
"""

import wandb  # noqa: F401
