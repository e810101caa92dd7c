"""``pathvlm run STAGE``: train one stage of the pipeline and export its model.

Steps: compose the stage recipe with a budget, a size and a profile overlay (``recipes``) → start from
the parent stage's exported model (``runs/<size>/<parent>/model``, which must be DONE) or the base model →
fill in the engine's model, output and logger settings → validate against the engine's own schema → write
``runs/<size>/<stage>/config.yaml`` (resolved, no secrets; its ``run:`` section records the initial model,
the parent's config hash, the data split manifest, its sha256 and ``split`` where it names one, e.g.
``authors-v2``) → launch the engine → export a Hugging
Face model to ``runs/<size>/<stage>/model`` → write ``DONE`` holding the config hash.

A finished stage with the same config hash is skipped; a changed config is refused unless ``--force``
(which deletes the stage directory and trains again); an interrupted stage resumes from its last checkpoint;
a missing parent stops with the command that makes it, a missing local base model with the one that builds
it. On SLURM's warning before the time limit (SIGUSR1) the engine checkpoints and stops (each engine's
``stop_handlers``). In a multi-node launch (``NNODES`` > 1) only node rank 0 prepares, exports and writes DONE
(``tools.train.node_rank``). A SLURM job with other GPUs than the profile's gets SFT's gradient accumulation
refitted to keep the effective batch: written to ``job.json`` beside ``config.yaml``, outside the config
and its hash. ``--dry-run`` prints the resolved config and the engine command and changes nothing.

``--seed N`` trains a replicate with another training seed in ``runs/<size>/<stage>-seedN``, from the parent
run of the same seed (``tools.recipe.run``; the recipe's own seed keeps ``runs/<size>/<stage>``). With a
validation split in the data, every checkpoint is kept and the best on it is exported (``selection``).

W&B: project ``pathvlm-r1``, group = the recipe's ``experiment``, job type = stage, run name
``<size>-<stage>`` (``-seedN`` for a replicate; ``tools.common.wandb_naming``);
tags carry the profile, budget, seed,
manifest and config hashes; its files (offline runs) go to ``runs/<size>/<stage>/wandb`` unless
``WANDB_DIR`` is set. What the profile declares (``tools.recipe.registry``) picks the GRPO engine and the
engine's torch threads (``torch_threads``: ``OMP_NUM_THREADS`` unless it is set).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rewards.judge.guard import MARKER as JUDGE_GUARD_MARKER
from tools.common import paths, wandb_key
from tools.common.errors import naming
from tools.common.model_dir import ModelDirError, require_model_dir
from tools.common.wandb_naming import child_environ, run_name, wandb_env
from tools.evaluation import selection
from tools.recipe import compose as recipes
from tools.recipe import registry
from tools.recipe.cli import add_recipe_arguments, with_profile_size
from tools.recipe.compose import DEFAULT_BUDGET, resolved_yaml
from tools.recipe.registry import ProfileInfo, RecipeError
from tools.recipe.run import Run
from tools.recipe.validate import validate
from tools.train import failure, node_rank, run_spec
from tools.train.engines.base import Engine
from tools.train.engines.easyr1 import EasyR1
from tools.train.engines.llamafactory import LlamaFactory
from tools.train.engines.trl import TrlGrpo
from tools.train.judge_estimate import estimate
from tools.train.prelaunch import announce_overlong, check_judge
from tools.train.process import run_logged
from tools.train.run_spec import RunError

_HASH_LINE = re.compile(r"^# config hash: ([0-9a-f]{64})$", re.MULTILINE)
# The engine of each (recipe section, profile's grpo_engine); SFT is LLaMA-Factory on every profile.
ENGINES: dict[tuple[str, str | None], type[Engine]] = {
    ("llamafactory", None): LlamaFactory,
    ("easyr1", "easyr1"): EasyR1,
    ("easyr1", "trl"): TrlGrpo,
}


@dataclass
class Plan:
    stage: str
    profile: str
    run: Run
    cfg: dict[str, Any]  # resolved, with the engine's settings and the `run:` section
    config_hash: str
    engine: Engine
    env: dict[str, str]  # variables set for the engine on top of the current environment
    overrides: list[str]
    budget: str = DEFAULT_BUDGET
    seed: int | None = None  # None: the recipe's seed
    job: dict[str, Any] = field(default_factory=dict)  # engine values fitted to the job's GPUs (job.json)

    @property
    def size(self) -> str:
        return self.run.size

    @property
    def stage_dir(self) -> Path:
        return self.run.dir

    @property
    def name(self) -> str:
        return f"{self.size}/{self.stage}"

    def shell_command(self) -> str:
        launch = {k: os.environ[k] for k in self.engine.launch_env if k in os.environ}
        assignments = [f"{k}={shlex.quote(v)}" for k, v in {**self.env, **launch}.items()]
        return " ".join([*assignments, shlex.join(self.engine.command())])


# ---------------------------------------------------------------------------------------------- plan


def engine_class(cfg: dict[str, Any], info: ProfileInfo) -> type[Engine]:
    """LLaMA-Factory for ``llamafactory:``; the profile's ``grpo_engine`` (EasyR1, or TRL) for ``easyr1:``."""
    key = (cfg["engine"], None if cfg["engine"] == "llamafactory" else info.grpo_engine)
    if key not in ENGINES:
        where = f"recipe {cfg['stage']}/{cfg['size']}/{cfg['profile']}"
        raise RecipeError(where, [f"engine: {cfg['engine']!r}, expected one of {list(recipes.SECTIONS)}"])
    return ENGINES[key]


def make_plan(
    stage: str,
    size: str,
    profile: str,
    runs_root: Path,
    overrides: list[str],
    dry_run: bool = False,
    budget: str = DEFAULT_BUDGET,
    seed: int | None = None,
) -> Plan:
    """Everything about a run except running it; with ``dry_run`` a missing parent or data is only noted.
    The resolved config is built here, once; nothing changes it afterwards."""
    recipes.size_for(size, profile)  # a stand-in profile runs no paper size
    info = registry.profile(profile)
    seeded = [*overrides, f"seed={seed}"] if seed is not None else overrides
    composed = recipes.to_container(recipes.compose(stage, size, profile, seeded, budget))
    # the seed of --seed or --set names the run
    run = Run.of(runs_root.resolve(), size, stage, composed["seed"], recipes.default_seed())
    init_model, parent_hash = run_spec.initial_model(composed, info, runs_root, dry_run)
    if not dry_run and Path(init_model).is_dir():
        try:
            require_model_dir(Path(init_model))
        except ModelDirError as exc:
            raise RunError(f"stage {stage} starts from {exc}") from exc
    engine_type = engine_class(composed, info)
    cfg = engine_type.fill(composed, run, init_model, run_name(size, run.name))
    run_spec.require_frozen_vision(cfg)
    manifest = run_spec.manifest_path(cfg)
    validation = selection.validation_data(manifest)
    if validation is not None:
        selection.keep_checkpoints(cfg)
    validate(OmegaConf.create(cfg))
    cfg["run"] = {
        "init_model": init_model,
        "parent_config_hash": parent_hash,
        **run_spec.data_fields(manifest, dry_run),
        "selection_data": None if validation is None else str(validation),
    }
    config_hash = recipes.config_hash(OmegaConf.create(cfg))
    engine, env = engine_type(cfg, run), _engine_env(cfg, run, info, budget, config_hash)
    return Plan(
        stage, profile, run, cfg, config_hash, engine, env, list(overrides), budget, seed, engine.fit_to_job()
    )


def _engine_env(
    cfg: dict[str, Any], run: Run, info: ProfileInfo, budget: str, config_hash: str
) -> dict[str, str]:
    """W&B's identity and tags, the profile's torch threads, W&B's folder with the run."""
    env = wandb_env(cfg["experiment"], run.size, run.name, job_type=cfg["stage"])
    manifest_hash = (cfg["run"]["manifest_sha256"] or "none")[:12]
    tags = [info.name, f"budget-{budget}", f"seed-{cfg['seed']}", f"manifest-{manifest_hash}"]
    env["WANDB_TAGS"] = ",".join([*tags, f"config-{config_hash[:12]}"])
    if info.torch_threads is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(info.torch_threads)
    if "WANDB_DIR" not in os.environ:  # W&B's files (offline runs) go with the run, not into ./wandb
        env["WANDB_DIR"] = str(run.dir)
    return env


# ---------------------------------------------------------------------------------------------- run


def recorded_hash(stage_dir: Path) -> str | None:
    """The config hash of the run in ``stage_dir``: DONE's, else the header of an interrupted run's config."""
    run = Run.at(stage_dir)
    if run.done.is_file():
        return run.done.read_text(encoding="utf-8").strip()
    if run.config.is_file():
        match = _HASH_LINE.search(run.config.read_text(encoding="utf-8"))
        return match.group(1) if match else None
    return None


def execute(plan: Plan, force: bool = False) -> None:
    """Train, export and mark the stage done (or skip it, or resume it); raises RunError when it cannot."""
    run, name = plan.run, plan.name
    if node_rank.node_rank() > 0:
        _follow_node_rank0(plan)
        return
    node_rank.clear(run.dir)
    old, done = recorded_hash(run.dir), run.done.is_file()
    if old == plan.config_hash and done and not force:
        print(f"{name} is already done with config {plan.config_hash[:12]} ({run.dir}): skipping")
        node_rank.announce(run.dir, plan.config_hash, launch=False)
        return
    if old is not None and old != plan.config_hash and not force:
        state = "finished" if done else "interrupted"
        raise RunError(
            f"{run.dir} holds a {state} run with config hash {old}, but the recipe now gives "
            f"{plan.config_hash}. Keep it, or retrain from scratch with --force (deletes {run.dir})."
        )
    if force or not plan.engine.finished():  # before anything is written or deleted: no new run to fix it
        check_judge(plan.cfg, plan.name)
    if force and run.dir.exists():
        print(f"--force: deleting {run.dir}", flush=True)
        shutil.rmtree(run.dir)

    _write_files(plan)
    start = time.monotonic()
    if plan.engine.finished():
        print(f"{name}: training already finished, exporting", flush=True)
        node_rank.announce(run.dir, plan.config_hash, launch=False)
    else:
        announce_overlong(plan.cfg, plan.env)
        resume = plan.engine.resume()
        if (judge := estimate(plan.cfg)) is not None:
            print(judge.line(), flush=True)
        run.stop.unlink(missing_ok=True)  # a stop request of an earlier attempt
        node_rank.announce(run.dir, plan.config_hash, launch=True)
        print(f"{name}: " + (f"resuming from {resume}" if resume else "training from the start"), flush=True)
        _launch(plan, run.train_log, resume)
    _require_steps(plan)
    plan.engine.export(_selected_model(plan))
    run.done.write_text(plan.config_hash + "\n", encoding="utf-8")
    print(f"{name} done in {time.monotonic() - start:.0f} s: model in {run.model}")


def _write_files(plan: Plan) -> None:
    """``config.yaml`` (the resolved config under a header with its command and hash), the engine's file
    when it reads another one, and ``job.json`` with what was fitted to this job's GPUs (or none)."""
    run, engine = plan.run, plan.engine
    run.dir.mkdir(parents=True, exist_ok=True)
    command = run_spec.run_command(
        plan.stage, plan.size, plan.profile, run.runs, plan.overrides, plan.budget, plan.seed
    )
    header = f"# {command}\n# config hash: {plan.config_hash}\n"
    run.config.write_text(header + resolved_yaml(OmegaConf.create(plan.cfg)), encoding="utf-8")
    if run.dir / engine.config_name != run.config:
        engine_yaml = resolved_yaml(OmegaConf.create(engine.engine_file(plan.job)))
        (run.dir / engine.config_name).write_text(engine_yaml, encoding="utf-8")
    if plan.job:
        run.job.write_text(json.dumps(plan.job, indent=2) + "\n", encoding="utf-8")
        print(f"{plan.name}: fitted to this job's GPUs, recorded in {run.job}: {plan.job}", flush=True)
    else:
        run.job.unlink(missing_ok=True)


def _require_steps(plan: Plan) -> None:
    """A run that took no optimizer step would export its initial model as this stage: never DONE."""
    if plan.engine.trained_steps() < 1:
        raise RunError(
            f"{plan.name}: the engine finished after 0 optimizer steps, so the stage is not "
            f"marked done (its model would be the initial one): check the recipe's epochs/max_steps and the "
            f"training data, then run again with --force (log: {plan.run.train_log})"
        )


def _selected_model(plan: Plan) -> Path | None:
    """With a validation split: the best kept checkpoint (``selection``), else None (final model)."""
    data = plan.cfg["run"]["selection_data"]
    if data is None:
        return None
    checkpoints = plan.engine.checkpoints()
    record = selection.select(plan.cfg, plan.stage_dir, checkpoints, Path(data))
    selection.log_to_wandb(record, plan.env, Path({**os.environ, **plan.env}["WANDB_DIR"]))
    return dict(checkpoints)[record["best_step"]]


def _launch(plan: Plan, log: Path, resumed_from: Path | None = None) -> None:
    """Run the engine; its stop handlers turn SLURM's signals into a checkpoint (``tools.train.process``).
    A guard's stop is quoted; another failure says what to do by its cause (``tools.train.failure``)."""
    print(f"$ {plan.shell_command()}", flush=True)
    offset = log.stat().st_size if log.is_file() else 0
    env = child_environ({**os.environ, **plan.env})
    code = run_logged(plan.engine.command(), env, log, on_signal=plan.engine.stop_handlers())
    if code == 0:
        return
    for marker in (JUDGE_GUARD_MARKER, failure.LOSS_GUARD_MARKER):
        if (line := failure.guard_line(log, offset, marker)) is not None:
            raise RunError(f"{plan.name}: {line} (log: {log})")
    raise RunError(
        f"{plan.name}: the engine exited with code {code} (log: {log}): "
        + failure.advice(code, log, offset, resumed_from)
    )


def _follow_node_rank0(plan: Plan) -> None:
    """A node other than rank 0 of a multi-node launch: run the engine once node 0 has prepared the stage;
    write nothing else (node 0 cleans, exports and marks the stage done)."""
    rank = node_rank.node_rank()
    print(f"{plan.name}: node rank {rank}: waiting for node rank 0 to prepare {plan.stage_dir}", flush=True)
    if not node_rank.wait_for_rank0(plan.stage_dir, plan.config_hash):
        print(f"{plan.name}: node rank {rank}: nothing to train (node rank 0 skips or exports)", flush=True)
        return
    _launch(plan, plan.stage_dir / f"train.node{rank}.log")
    print(f"{plan.name}: node rank {rank}: engine finished; node rank 0 exports the model", flush=True)


# ---------------------------------------------------------------------------------------------- CLI


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="train one pipeline stage (alpha, beta, r1, gamma, delta, epsilon) and export its model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_arguments(parser)
    parser.add_argument(
        "--runs",
        type=Path,
        default=paths.runs_root(),
        help=f"runs directory (default: ${paths.RUNS_ENV} or {paths.DEFAULT_RUNS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="training seed of a replicate run (default: the recipe's); another seed N trains in "
        "runs/<size>/<stage>-seedN from the parent run with the same seed",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and command only")
    parser.add_argument(
        "--force", action="store_true", help="delete this stage's earlier run and train again"
    )
    parser.set_defaults(func=with_profile_size(main))


def main(args: argparse.Namespace) -> int:
    if not args.dry_run and (found := wandb_key.problem(os.environ)):
        raise RunError(found)  # at once: before a recipe is composed, a model built, loaded or trained
    checking = "checking it against the engine's own argument schema (some seconds)"
    print(
        f"pathvlm run {args.stage}: composing the recipe ({args.size}, {args.profile}), {checking}",
        file=sys.stderr,
        flush=True,
    )
    try:
        plan = make_plan(
            args.stage,
            args.size,
            args.profile,
            args.runs,
            args.overrides,
            args.dry_run,
            args.budget,
            args.seed,
        )
        if args.dry_run:
            print(f"# {plan.run.config} (config hash {plan.config_hash})")
            print(resolved_yaml(OmegaConf.create(plan.cfg)), end="")
            print(f"# engine command ({plan.engine.name}):")
            print(plan.shell_command())
            return 0
        with naming(plan.stage_dir):  # a write failing on a full disk names the stage folder
            execute(plan, force=args.force)
    except (RecipeError, RunError, FileNotFoundError, TimeoutError) as exc:  # each names the file and the fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
