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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rewards.judge import JudgeConfig
from rewards.judge import check as judge_check
from rewards.judge.guard import MARKER as JUDGE_GUARD_MARKER
from tools.common import paths, wandb_key
from tools.common.errors import naming
from tools.common.grpo_rows import count_overlong, overlong_line
from tools.common.model_dir import ModelDirError, require_model_dir
from tools.common.wandb_naming import child_environ, run_name, wandb_env
from tools.recipe import compose as recipes
from tools.recipe import registry
from tools.recipe.cli import add_recipe_arguments
from tools.recipe.compose import DEFAULT_BUDGET, resolved_yaml, stage_judge
from tools.recipe.registry import ProfileInfo, RecipeError
from tools.recipe.run import Run
from tools.recipe.validate import validate
from tools.train import failure, node_rank, run_spec, selection
from tools.train.engines.base import Engine
from tools.train.engines.easyr1 import EasyR1
from tools.train.engines.llamafactory import LlamaFactory
from tools.train.engines.trl import TrlGrpo
from tools.train.judge_estimate import estimate
from tools.train.models import require_cached
from tools.train.process import run_logged
from tools.train.run_spec import RunError

_HASH_LINE = re.compile(r"^# config hash: ([0-9a-f]{64})$", re.MULTILINE)
# The engine of each (recipe section, profile's grpo_engine); SFT is LLaMA-Factory on every profile.
ENGINES: dict[tuple[str, str | None], type[Engine]] = {
    ("llamafactory", None): LlamaFactory,
    ("easyr1", "easyr1"): EasyR1,
    ("easyr1", "trl"): TrlGrpo,
}
TINY_MODEL_COMMAND = "pathvlm tiny-model --out {path}"  # what builds a stand-in profile's base model


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


def run_command(
    stage: str,
    size: str,
    profile: str,
    runs_root: Path,
    overrides: Sequence[str] = (),
    budget: str = DEFAULT_BUDGET,
    seed: int | None = None,
) -> str:
    """The command line that makes ``stage`` (what a missing parent's message tells the user to run)."""
    runs = "" if runs_root == paths.runs_root() else f" --runs {runs_root}"
    sets = f" --set {shlex.join(overrides)}" if overrides else ""
    options = (f" --budget {budget}" if budget != DEFAULT_BUDGET else "") + (
        f" --seed {seed}" if seed is not None else ""
    )
    return f"pathvlm run {stage} --size {size} --profile {profile}{options}{runs}{sets}"


# ---------------------------------------------------------------------------------------------- plan


def engine_class(cfg: dict[str, Any], info: ProfileInfo) -> type[Engine]:
    """LLaMA-Factory for ``llamafactory:``; the profile's ``grpo_engine`` (EasyR1, or TRL) for ``easyr1:``."""
    key = (cfg["engine"], None if cfg["engine"] == "llamafactory" else info.grpo_engine)
    if key not in ENGINES:
        raise ValueError(f"engine {cfg['engine']!r}: expected one of {list(recipes.SECTIONS)}")
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
    run = Run.of(
        runs_root.resolve(), size, stage, composed["seed"], recipes.default_seed()
    )  # --seed or --set
    init_model, parent_hash = _initial_model(composed, info, runs_root, dry_run)
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
    engine = engine_type(cfg, run)
    return Plan(
        stage,
        profile,
        run,
        cfg,
        config_hash,
        engine,
        _engine_env(cfg, run, info, budget, config_hash),
        list(overrides),
        budget,
        seed,
        engine.fit_to_job(),
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


def _initial_model(
    cfg: dict[str, Any], info: ProfileInfo, runs_root: Path, dry_run: bool
) -> tuple[str, str | None]:
    """(model path or hub id, parent's config hash): the parent's export (same seed), or the base model."""
    parent, size, profile = cfg.get("parent"), cfg["size"], cfg["profile"]
    if parent is None:
        base = cfg["base_model"]
        if not Path(base).exists():
            _require_base_model(base, info, size, dry_run)
        return (str(Path(base).resolve()) if Path(base).exists() else base), None
    seed = None if cfg["seed"] == recipes.default_seed() else cfg["seed"]
    parent_run = Run.of(runs_root, size, parent, seed, recipes.default_seed())
    if not parent_run.done.is_file():
        make_it = run_command(parent, size, profile, runs_root, budget=cfg["budget"], seed=seed)
        run_spec.note_or_raise(
            f"stage {cfg['stage']} starts from {parent}, which has not finished ({parent_run.done} is "
            f"missing). Make it first:\n  {make_it}",
            dry_run,
        )
        return str(parent_run.model.resolve()), None
    return str(parent_run.model.resolve()), parent_run.done.read_text(encoding="utf-8").strip()


def _require_base_model(base: str, info: ProfileInfo, size: str, dry_run: bool) -> None:
    """A stand-in profile's local base model must have been built (the command is named); a hub id must be in
    the Hugging Face cache (compute nodes are offline: ``make models``)."""
    if info.stand_in_size is not None:
        build = TINY_MODEL_COMMAND.format(path=shlex.quote(base))
        run_spec.note_or_raise(f"base model {base} does not exist: build it first with `{build}`", dry_run)
    elif not dry_run:
        require_cached(base, size)


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
    if force or not plan.engine.finished():
        check_judge(plan)  # before anything is written or deleted: fixing the judge is no new run
    if force and run.dir.exists():
        print(f"--force: deleting {run.dir}", flush=True)
        shutil.rmtree(run.dir)

    _write_files(plan)
    start = time.monotonic()
    if plan.engine.finished():
        print(f"{name}: training already finished, exporting", flush=True)
        node_rank.announce(run.dir, plan.config_hash, launch=False)
    else:
        announce_overlong(plan)
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
    command = run_command(
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


def announce_overlong(plan: Plan) -> None:
    """Before a GRPO stage: print how many RL prompts ``data.filter_overlong_prompts`` drops (counted with the
    initial model's processor) and tag the W&B run with it (``overlong-prompts-N``)."""
    data = plan.cfg.get("easyr1", {}).get("data")
    if plan.cfg.get("engine") == "llamafactory" or not data or not data.get("filter_overlong_prompts", True):
        return
    dropped, total, longest = count_overlong(data, plan.cfg["run"]["init_model"])
    print(f"{overlong_line(dropped, total, data['max_prompt_length'])} (longest: {longest})", flush=True)
    if dropped == total:
        raise RunError(
            f"every prompt is longer than easyr1.data.max_prompt_length={data['max_prompt_length']} "
            f"(longest {longest} tokens): raise it or lower easyr1.data.max_pixels"
        )
    plan.env["WANDB_TAGS"] += f",overlong-prompts-{dropped}"


def check_judge(plan: Plan) -> None:
    """Before a stage whose reward calls a judge (r1), before a model is loaded: one real judge call
    (``rewards.judge.check``); a missing key, a refused key, an unknown model or an unreachable URL stops
    the run here with one line naming the variable or the URL."""
    settings = stage_judge(plan.cfg)
    if settings is None:
        return
    try:
        print(judge_check.check_judge(JudgeConfig.from_dict(settings)), flush=True)
    except judge_check.JudgeUnusable as error:
        raise RunError(f"{plan.name}: {error}") from None


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
    parser.set_defaults(func=main)


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
            dry_run=args.dry_run,
            budget=args.budget,
            seed=args.seed,
        )
        if args.dry_run:
            print(f"# {plan.run.config} (config hash {plan.config_hash})")
            print(resolved_yaml(OmegaConf.create(plan.cfg)), end="")
            print(f"# engine command ({plan.engine.name}):")
            print(plan.shell_command())
            return 0
        with naming(plan.stage_dir):  # a write failing on a full disk names the stage folder
            execute(plan, force=args.force)
    except (
        RecipeError,
        RunError,
        FileNotFoundError,
        TimeoutError,
    ) as exc:  # each names the file and what to do
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
