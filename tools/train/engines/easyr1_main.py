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
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

FORWARDED_PREFIXES = ("WANDB_", "PATHVLM_")
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
    """``ray.init`` that adds ``forwarded_env`` to the runtime_env's ``env_vars`` (EasyR1's own win)."""

    def patched(*args: Any, runtime_env: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        runtime_env = dict(runtime_env or {})
        runtime_env["env_vars"] = {**forwarded_env(environ), **runtime_env.get("env_vars", {})}
        options = {**local_cluster_options(environ), **kwargs} if not args else kwargs
        return init(*args, runtime_env=runtime_env, **options)

    return patched


def main() -> None:
    if "-h" in sys.argv[1:] or "--help" in sys.argv[1:]:
        print(__doc__)
        return
    import tools.common.wandb_first  # noqa: F401  (before EasyR1 imports torch)

    # isort: split
    import ray

    ray.init = with_run_env(ray.init, dict(os.environ))
    from verl.trainer.main import main as easyr1_main

    easyr1_main()


if __name__ == "__main__":
    main()
