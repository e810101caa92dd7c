"""EasyR1 with the run's identity in Ray: ``python -m tools.train.engines.easyr1_main config=<easyr1.yaml>``.

``verl.trainer.main`` calls ``ray.init(runtime_env={"env_vars": <its fixed set>})``, and ``wandb.init`` runs
inside a Ray actor. On one node Ray's workers inherit the runner's environment, but on several nodes they are
started by raylets that began before the runner set ``WANDB_RUN_ID`` / ``WANDB_RESUME`` / group / tags, so
every requeue would open a new, ungrouped W&B run. This entry point adds those variables (``WANDB_*`` and
``PATHVLM_*``, never a key: ``*_API_KEY`` stays with each node's own environment) to that ``runtime_env``,
then runs EasyR1's ``main()`` unchanged.

On a shared node it also keeps EasyR1 off other jobs' Ray clusters: without ``RAY_ADDRESS`` (one node) Ray
starts a cluster of its own (``local``) in a per-job temporary folder (``/tmp/ray-<job id>``) with the
dashboard off, instead of attaching to whatever cluster another user started on the node.

Two corrections of EasyR1 b44b311's math run in every Ray worker (``worker_process_setup_hook``, Ray's
own mechanism; ``patch_workers``):

- ``loss_avg_mode: seq`` is the mean over each response's tokens, then over responses (GRPO, the authors'
  TRL objective). ``DataParallelPPOActor.update_policy`` multiplies each micro-batch's loss by its tokens
  × world / all tokens of the mini-batch, which turns ``seq`` into the global token mean (long responses
  weigh more). ``seq_mean_per_response`` weighs each response's tokens by 1 / its length: each response's
  mean is unchanged, and that factor becomes responses × world / all responses.
- ``worker.rollout.seed`` seeds the vLLM engine (reproducible runs) and EasyR1 also copies it into every
  request's ``SamplingParams.seed``, so a prompt drew the same noise at every step (vLLM seeds sample i
  with seed + i). ``unseeded_requests`` keeps the engine's seed and drops the requests'.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

FORWARDED_PREFIXES = ("WANDB_", "PATHVLM_")
SETUP_HOOK = "tools.train.engines.easyr1_main.patch_workers"  # run by every Ray worker at start
SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD")


def forwarded_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The runner's per-run variables that Ray's workers on other nodes would not have."""
    return {
        name: value
        for name, value in environ.items()
        if name.startswith(FORWARDED_PREFIXES)
        and not name.endswith(SECRET_SUFFIXES)
        and name != "WANDB_SERVICE"  # a parent's wandb service: never inherited (tools.common.wandb_naming)
    }


def local_cluster_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """``ray.init`` options for a single-node run: its own local cluster, per-job temp dir, no dashboard."""
    if environ.get("RAY_ADDRESS", "local") != "local":
        return {}
    job = environ.get("SLURM_JOB_ID") or str(os.getpid())
    return {"address": "local", "include_dashboard": False, "_temp_dir": f"/tmp/ray-{job}"}


def with_run_env(init: Callable[..., Any], environ: Mapping[str, str]) -> Callable[..., Any]:
    """``ray.init`` that adds ``forwarded_env`` to the runtime_env's ``env_vars`` (EasyR1's own win) and
    ``patch_workers`` as every worker's setup hook."""

    def patched(*args: Any, runtime_env: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        runtime_env = dict(runtime_env or {})
        runtime_env["env_vars"] = {**forwarded_env(environ), **runtime_env.get("env_vars", {})}
        runtime_env.setdefault("worker_process_setup_hook", SETUP_HOOK)
        options = {**local_cluster_options(environ), **kwargs} if not args else kwargs
        return init(*args, runtime_env=runtime_env, **options)

    return patched


def seq_mean_per_response(update_policy: Callable[..., Any]) -> Callable[..., Any]:
    """``DataParallelPPOActor.update_policy`` whose ``seq`` mode is the per-response mean, then the mean over
    responses (EasyR1's token-count rescaling made every mode the global token mean)."""

    @functools.wraps(update_policy)
    def patched(self: Any, data: Any) -> Any:
        if self.config.loss_avg_mode == "seq":
            mask = data.batch["response_mask"]
            data.batch["response_mask"] = mask / mask.sum(-1, keepdim=True).clamp(min=1)
        return update_policy(self, data)

    return patched


def unseeded_requests(init: Callable[..., Any]) -> Callable[..., Any]:
    """``vLLMRollout.__init__`` that keeps ``rollout.seed`` for the engine but not in its requests."""

    @functools.wraps(init)
    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.sampling_params.seed = None

    return patched


def patch_workers() -> None:
    """Apply both corrections in this process (once); Ray runs it in every worker (``SETUP_HOOK``)."""
    from verl.workers.actor.dp_actor import DataParallelPPOActor
    from verl.workers.rollout.vllm_rollout_spmd import vLLMRollout

    if not hasattr(DataParallelPPOActor.update_policy, "__wrapped__"):
        DataParallelPPOActor.update_policy = seq_mean_per_response(DataParallelPPOActor.update_policy)
    if not hasattr(vLLMRollout.__init__, "__wrapped__"):
        vLLMRollout.__init__ = unseeded_requests(vLLMRollout.__init__)


def main() -> None:
    if "-h" in sys.argv[1:] or "--help" in sys.argv[1:]:
        print(__doc__)
        return
    # deferred past --help: wandb before EasyR1 imports torch (tools.common.wandb_first says why), then Ray
    import wandb  # noqa: F401

    # isort: split
    import ray

    ray.init = with_run_env(ray.init, dict(os.environ))
    from verl.trainer.main import main as easyr1_main

    easyr1_main()


if __name__ == "__main__":
    main()
