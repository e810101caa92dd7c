"""Checkpoint and stop on request: SLURM's warning before the time limit, for the Trainer-based engines.

The runner asks a running engine to stop in one of two ways (see each engine's ``request_stop``):

- it writes the stop file ``STOP`` in the run folder, beside the file the engine reads (LLaMA-Factory: under
  torchrun the ranks are grandchildren of the runner, so a file reaches them where a signal would not);
- it forwards the signal itself (SIGTERM: preemption).

A signal that reaches an engine before its handler exists (while the model loads) kills it; the stop file
waits until the first step ends.

``StopAndSave`` is a ``transformers.TrainerCallback``: at the end of every optimizer step global rank 0
looks for the stop file (or notes a signal it caught), the decision is shared with an all-reduce (maximum,
so a request seen by any rank counts) and every rank then saves the same ``checkpoint-N`` and exits with
``128 + signal`` right after the save, before the engine writes its final model: a stopped stage never looks
finished to the runner.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class StopAndSave(TrainerCallback):
    """Save a checkpoint at the end of the current step and exit once ``path`` exists or one of ``signals``
    arrived."""

    def __init__(self, path: Path, signals: tuple[int, ...] = ()) -> None:
        self.received = 0  # the signal number of the request; 0: none
        self.path = path
        for sig in signals:
            signal.signal(sig, self._note)

    def _note(self, signum: int, _frame: object) -> None:
        self.received = signum

    def _requested(self, device: Any) -> int:
        import torch  # deferred: loaded by the Trainer already when a step ends
        import torch.distributed as dist

        local = self.received
        if not local and os.environ.get("RANK", "0") == "0" and self.path.exists():  # global rank 0
            local = int(signal.SIGUSR1)  # the file stands for the warning signal the runner received
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return local
        flag = torch.tensor([local], dtype=torch.int64, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.received = self._requested(args.device)
        if self.received:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.received:
            if state.is_world_process_zero:
                print(
                    f"stopped by signal {self.received} after step {state.global_step}: checkpoint "
                    f"checkpoint-{state.global_step} saved; run the stage again to resume",
                    flush=True,
                )
            raise SystemExit(128 + self.received)
        return control
