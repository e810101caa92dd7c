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
a missing parent stops with the command that makes it. On SLURM's warning before the time limit (SIGUSR1)
the engine checkpoints and stops (``stop_handlers`` of each engine). In a multi-node launch (``NNODES`` > 1)
only node rank 0 prepares, exports and writes DONE (``tools.train.node_rank``). ``--dry-run`` prints the
resolved config and the engine command and changes nothing.

``--seed N`` trains a replicate with another training seed in ``runs/<size>/<stage>-seedN``, from the parent
run of the same seed (``tools.recipe.run``; the recipe's own seed keeps ``runs/<size>/<stage>``). With a
validation split in the data, every checkpoint is kept and the best on it is exported (``selection``).

W&B: project ``pathvlm-r1``, group = the recipe's ``experiment``, job type = stage, run name
``<size>-<stage>`` (``-seedN`` for a replicate; ``tools.common.wandb_naming``);
tags carry the profile, budget, seed,
manifest and config hashes; its files (offline runs) go to ``runs/<size>/<stage>/wandb`` unless
``WANDB_DIR`` is set. What the profile declares (``tools.recipe.registry``) picks the GRPO engine, the
engine's torch threads (``torch_threads``: ``OMP_NUM_THREADS`` unless it is set) and how a missing local base
model is built (``base_model_build``, e.g. the cpu profile's ``pathvlm tiny-model``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.common import paths, wandb_key
from tools.common.errors import UserError, naming, read_json
from tools.common.model_dir import ModelDirError, require_model_dir
from tools.common.wandb_naming import child_environ
from tools.recipe import compose as recipes
from tools.recipe import registry
from tools.recipe.cli import add_recipe_arguments
from tools.recipe.compose import DEFAULT_BUDGET
from tools.recipe.registry import RecipeError
from tools.recipe.run import Run
from tools.recipe.validate import validate
from tools.train import failure

CONFIG_FILE, DONE_FILE = "config.yaml", "DONE"
_HASH_LINE = re.compile(r"^# config hash: ([0-9a-f]{64})$", re.MULTILINE)


class RunError(UserError, RuntimeError):
    """A stage that cannot run as asked; the message says what to do instead."""


@dataclass
class Plan:
    stage: str
    size: str
    profile: str
    runs_root: Path
    stage_dir: Path
    cfg: dict[str, Any]  # resolved, with the runner's settings and the `run:` section
    config_hash: str
    engine: ModuleType
    env: dict[str, str]  # variables set for the engine on top of the current environment
    overrides: list[str]
    budget: str = DEFAULT_BUDGET
    seed: int | None = None  # None: the recipe's seed

    @property
    def command(self) -> list[str]:
        return self.engine.command(self.stage_dir)

    def shell_command(self) -> str:
        launch = {k: os.environ[k] for k in self.engine.LAUNCH_ENV if k in os.environ}
        assignments = [f"{k}={shlex.quote(v)}" for k, v in {**self.env, **launch}.items()]
        return " ".join([*assignments, shlex.join(self.command)])


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
    """Everything about a run except running it; with ``dry_run`` a missing parent or data is only noted."""
    from omegaconf import OmegaConf

    from tools.common.wandb_naming import run_name, wandb_env
    from tools.train import engines, selection

    recipes.size_for(size, profile)  # a stand-in profile runs no paper size
    seeded = [*overrides, f"seed={seed}"] if seed is not None else overrides
    cfg = recipes.to_container(recipes.compose(stage, size, profile, seeded, budget))
    run_as = Run.of(
        runs_root, size, stage, cfg["seed"], recipes.default_seed()
    ).name  # --seed or --set seed=N alike
    stage_dir = (runs_root / size / run_as).resolve()
    init_model, parent_hash = _initial_model(cfg, runs_root, dry_run)
    if not dry_run and Path(init_model).is_dir():
        try:
            require_model_dir(Path(init_model))
        except ModelDirError as exc:
            raise RunError(f"stage {stage} starts from {exc}") from exc
    engine = engines.for_config(cfg)
    engine.prepare(cfg, stage_dir, init_model, run_name(size, run_as))
    _require_frozen_vision(cfg)
    manifest = _manifest_path(cfg)
    validation = selection.validation_data(manifest)
    if validation is not None:
        selection.keep_checkpoints(cfg)
    validate(OmegaConf.create(cfg))
    cfg["run"] = {
        "init_model": init_model,
        "parent_config_hash": parent_hash,
        "manifest": str(manifest),
        "manifest_sha256": _sha256(manifest, dry_run),
        **_split_fields(manifest),
        "selection_data": None if validation is None else str(validation),
    }
    config_hash = recipes.config_hash(OmegaConf.create(cfg))
    env = wandb_env(cfg["experiment"], size, run_as, job_type=stage)
    env["WANDB_TAGS"] = ",".join(
        [
            profile,
            f"budget-{budget}",
            f"seed-{cfg['seed']}",
            f"manifest-{(cfg['run']['manifest_sha256'] or 'none')[:12]}",
            f"config-{config_hash[:12]}",
        ]
    )
    threads = registry.profile(profile).torch_threads
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    env[engines.STOP_FILE_ENV] = str(stage_dir / engines.STOP_FILE)
    if "WANDB_DIR" not in os.environ:  # W&B's files (offline runs) go with the run, not into ./wandb
        env["WANDB_DIR"] = str(stage_dir)
    return Plan(
        stage,
        size,
        profile,
        runs_root,
        stage_dir,
        cfg,
        config_hash,
        engine,
        env,
        list(overrides),
        budget,
        seed,
    )


def _initial_model(cfg: dict[str, Any], runs_root: Path, dry_run: bool) -> tuple[str, str | None]:
    """(model path or hub id, parent's config hash): the parent's export (same seed), or the base model."""
    from tools.recipe.compose import default_seed
    from tools.recipe.registry import profile as profile_info

    parent, size, profile = cfg.get("parent"), cfg["size"], cfg["profile"]
    if parent is None:
        base, info = cfg["base_model"], profile_info(profile)
        if info.base_model_build is not None and _same_path(base, info.base_model):
            _build_base_model(Path(base), info.base_model_build, dry_run)
        elif not dry_run and not Path(base).exists():
            from tools.train.models import require_cached

            require_cached(base, size)  # compute nodes are offline: name `make models`
        return (str(Path(base).resolve()) if Path(base).exists() else base), None
    seed = None if cfg["seed"] == default_seed() else cfg["seed"]
    parent_dir = Run.of(runs_root, size, parent, seed, default_seed()).dir
    done = parent_dir / DONE_FILE
    if not done.is_file():
        make_it = run_command(parent, size, profile, runs_root, budget=cfg["budget"], seed=seed)
        message = (
            f"stage {cfg['stage']} starts from {parent}, which has not finished ({done} is missing). "
            f"Make it first:\n  {make_it}"
        )
        if not dry_run:
            raise RunError(message)
        print(f"# note: {message}")
        return str((parent_dir / "model").resolve()), None
    return str((parent_dir / "model").resolve()), done.read_text(encoding="utf-8").strip()


def _same_path(a: str, b: str | None) -> bool:
    return b is not None and Path(a).resolve() == Path(b).resolve()


def _build_base_model(path: Path, build: str, dry_run: bool) -> None:
    """Build the missing local base model ``path`` with the profile's ``pathvlm <build> --out`` command."""
    if path.exists():
        return
    if dry_run:
        print(f"# note: the base model {path} does not exist yet; a real run builds it (pathvlm {build})")
        return
    print(f"building the base model at {path} (pathvlm {build})", flush=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    command = [sys.executable, "-m", "tools.cli", *shlex.split(build), "--out", str(tmp)]
    if subprocess.run(command, check=False).returncode != 0:
        raise RunError(f"building the base model failed: {shlex.join(command)}")
    tmp.rename(path)


def _require_frozen_vision(cfg: dict[str, Any]) -> None:
    """The paper freezes the vision encoder in every stage; refuse a recipe that does not."""
    if cfg["engine"] == "llamafactory":
        key, frozen = "llamafactory.freeze_vision_tower", cfg["llamafactory"].get("freeze_vision_tower", True)
    else:
        key = "easyr1.worker.actor.model.freeze_vision_tower"
        frozen = cfg["easyr1"]["worker"]["actor"]["model"].get("freeze_vision_tower", False)
    if frozen is not True:
        raise RunError(f"{key} is {frozen!r}: the vision tower stays frozen in every stage (set it to true)")


def _manifest_path(cfg: dict[str, Any]) -> Path:
    """``<data>/manifest.json`` beside the ``llamafactory/`` and ``easyr1/`` folders the recipe reads."""
    if cfg["engine"] == "llamafactory":
        return Path(cfg["llamafactory"]["dataset_dir"]).parent / "manifest.json"
    return Path(str(cfg["easyr1"]["data"]["train_files"]).split("@", 1)[0]).parent.parent / "manifest.json"


def _split_fields(manifest: Path) -> dict[str, str]:
    """How the data were split, read once from the manifest: ``split_unit`` (image or question; older
    manifests: image) and, when the manifest names its split (``authors-v2``), ``split`` for
    ``pathvlm report`` where the data are not; no ``split`` for our seeded split, so the config hash of runs
    on it stays as it was."""
    if not manifest.is_file():
        return {"split_unit": "image"}
    content = read_json(manifest)
    if not isinstance(content, dict):
        raise RunError(f"{manifest}: expected a JSON object; convert the data again (pathvlm data)")
    fields = {"split_unit": str(content.get("split_unit", "image"))}
    if split := content.get("split"):
        fields["split"] = str(split)
    return fields


def _sha256(path: Path, dry_run: bool) -> str | None:
    """The manifest's sha256, once the data files beside it are the ones it lists (sha256 per file)."""
    if path.is_file():
        from tools.data.check import check_files

        problems = check_files(path.parent, path)
        if problems:
            message = "\n  ".join(
                [f"the data in {path.parent} is not what its manifest lists:", *problems[:10]]
                + [f"... and {len(problems) - 10} more"] * (len(problems) > 10)
            )
            check = f"pathvlm data check {shlex.quote(str(path.parent))}"
            message += f"\nconvert the data again, then check it:\n  {check}"
            if not dry_run:
                raise RunError(message)
            print(f"# note: {message}")
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if dry_run:
        print(f"# note: data manifest {path} not found; generate the data before a real run")
        return None
    raise RunError(f"data manifest {path} not found: generate the data first (`make data` / `pathvlm data`)")


# ---------------------------------------------------------------------------------------------- run


def recorded_hash(stage_dir: Path) -> str | None:
    """The config hash of the run in ``stage_dir``: DONE's, else the header of an interrupted run's config."""
    done, config = stage_dir / DONE_FILE, stage_dir / CONFIG_FILE
    if done.is_file():
        return done.read_text(encoding="utf-8").strip()
    if config.is_file():
        match = _HASH_LINE.search(config.read_text(encoding="utf-8"))
        return match.group(1) if match else None
    return None


def execute(plan: Plan, force: bool = False) -> None:
    """Train, export and mark the stage done (or skip it, or resume it); raises RunError when it cannot."""
    from omegaconf import OmegaConf

    from tools.recipe.compose import resolved_yaml
    from tools.train import engines, node_rank

    stage_dir, name = plan.stage_dir, f"{plan.size}/{plan.stage}"
    if node_rank.node_rank() > 0:
        _follow_node_rank0(plan)
        return
    node_rank.clear(stage_dir)
    old = recorded_hash(stage_dir)
    done = (stage_dir / DONE_FILE).is_file()
    if old == plan.config_hash and done and not force:
        print(f"{name} is already done with config {plan.config_hash[:12]} ({stage_dir}): skipping")
        node_rank.announce(stage_dir, plan.config_hash, launch=False)
        return
    if old is not None and old != plan.config_hash and not force:
        state = "finished" if done else "interrupted"
        raise RunError(
            f"{stage_dir} holds a {state} run with config hash {old}, but the recipe now gives "
            f"{plan.config_hash}. Keep it, or retrain from scratch with --force (deletes {stage_dir})."
        )
    if force or not plan.engine.finished(plan.cfg, stage_dir):
        check_judge(plan)  # before anything is written or deleted: fixing the judge is no new run
    if force and stage_dir.exists():
        print(f"--force: deleting {stage_dir}", flush=True)
        shutil.rmtree(stage_dir)

    stage_dir.mkdir(parents=True, exist_ok=True)
    command = run_command(
        plan.stage, plan.size, plan.profile, plan.runs_root, plan.overrides, plan.budget, plan.seed
    )
    header = f"# {command}\n# config hash: {plan.config_hash}\n"
    (stage_dir / CONFIG_FILE).write_text(header + resolved_yaml(OmegaConf.create(plan.cfg)), encoding="utf-8")
    if plan.engine.CONFIG_NAME != CONFIG_FILE:
        engine_yaml = resolved_yaml(OmegaConf.create(plan.engine.engine_config(plan.cfg)))
        (stage_dir / plan.engine.CONFIG_NAME).write_text(engine_yaml, encoding="utf-8")

    start = time.monotonic()
    if plan.engine.finished(plan.cfg, stage_dir):
        print(f"{name}: training already finished, exporting", flush=True)
        node_rank.announce(stage_dir, plan.config_hash, launch=False)
    else:
        announce_overlong(plan)
        resume = plan.engine.before_launch(plan.cfg)
        _print_judge_estimate(plan.cfg)
        (stage_dir / engines.STOP_FILE).unlink(missing_ok=True)  # a stop request of an earlier attempt
        node_rank.announce(stage_dir, plan.config_hash, launch=True)
        print(f"{name}: " + (f"resuming from {resume}" if resume else "training from the start"), flush=True)
        _launch(plan, engines.TRAIN_LOG, resume)
    _require_steps(plan)
    plan.engine.export(plan.cfg, stage_dir, _selected_model(plan))
    (stage_dir / DONE_FILE).write_text(plan.config_hash + "\n", encoding="utf-8")
    print(f"{name} done in {time.monotonic() - start:.0f} s: model in {stage_dir / engines.MODEL_DIR}")


def _require_steps(plan: Plan) -> None:
    """A run that took no optimizer step would export its initial model as this stage: never DONE."""
    if plan.engine.trained_steps(plan.cfg, plan.stage_dir) < 1:
        raise RunError(
            f"{plan.size}/{plan.stage}: the engine finished after 0 optimizer steps, so the stage is not "
            f"marked done (its model would be the initial one): check the recipe's epochs/max_steps and the "
            f"training data, then run again with --force (log: {plan.stage_dir / 'train.log'})"
        )


def _selected_model(plan: Plan) -> Path | None:
    """With a validation split: the best kept checkpoint (``selection``), else None (final model)."""
    data = plan.cfg["run"]["selection_data"]
    if data is None:
        return None
    from tools.train import selection

    checkpoints = plan.engine.checkpoints(plan.cfg, plan.stage_dir)
    record = selection.select(plan.cfg, plan.stage_dir, checkpoints, Path(data))
    selection.log_to_wandb(record, plan.env, Path({**os.environ, **plan.env}["WANDB_DIR"]))
    return dict(checkpoints)[record["best_step"]]


def announce_overlong(plan: Plan) -> None:
    """Before a GRPO stage: print how many RL prompts ``data.filter_overlong_prompts`` drops (counted with the
    initial model's processor) and tag the W&B run with it (``overlong-prompts-N``)."""
    from tools.common.grpo_rows import count_overlong, overlong_line

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
    from rewards.judge import JudgeConfig
    from rewards.judge.check import JudgeUnusable, check_judge
    from tools.recipe.compose import stage_judge

    settings = stage_judge(plan.cfg)
    if settings is None:
        return
    try:
        print(check_judge(JudgeConfig.from_dict(settings)), flush=True)
    except JudgeUnusable as error:
        raise RunError(f"{plan.size}/{plan.stage}: {error}") from None


def _print_judge_estimate(cfg: dict[str, Any]) -> None:
    """The `pathvlm judge estimate` line of a stage with a judge (r1), before it starts."""
    from tools.train.judge_estimate import estimate

    result = estimate(cfg)
    if result is not None:
        print(result.line(), flush=True)


def _launch(plan: Plan, log_name: str, resumed_from: Path | None = None) -> None:
    """Run the engine; its stop handlers turn SLURM's signals into a checkpoint (tools.train.engines).
    A failure says what to do by its cause (``tools.train.failure``)."""
    from tools.train import engines

    print(f"$ {plan.shell_command()}", flush=True)
    log = plan.stage_dir / log_name
    offset = log.stat().st_size if log.is_file() else 0
    code = engines.run_logged(
        plan.command,
        child_environ({**os.environ, **plan.env}),
        log,
        on_signal=plan.engine.stop_handlers(plan.cfg, plan.stage_dir),
    )
    if code != 0:
        from rewards.judge.guard import MARKER as JUDGE_GUARD
        from tools.train.engines.loss_guard import MARKER as LOSS_GUARD
        from tools.train.engines.loss_guard import diverged_line

        for marker in (JUDGE_GUARD, LOSS_GUARD):
            if (line := diverged_line(log, offset, marker)) is not None:
                raise RunError(f"{plan.size}/{plan.stage}: {line} (log: {log})")
        raise RunError(
            f"{plan.size}/{plan.stage}: the engine exited with code {code} (log: {log}): "
            + failure.advice(code, log, offset, resumed_from)
        )


def _follow_node_rank0(plan: Plan) -> None:
    """A node other than rank 0 of a multi-node launch: run the engine once node 0 has prepared the stage;
    write nothing else (node 0 cleans, exports and marks the stage done)."""
    from tools.train import node_rank

    rank, name = node_rank.node_rank(), f"{plan.size}/{plan.stage}"
    print(f"{name}: node rank {rank}: waiting for node rank 0 to prepare {plan.stage_dir}", flush=True)
    if not node_rank.wait_for_rank0(plan.stage_dir, plan.config_hash):
        print(f"{name}: node rank {rank}: nothing to train (node rank 0 skips or exports)", flush=True)
        return
    _launch(plan, f"train.node{rank}.log")
    print(f"{name}: node rank {rank}: engine finished; node rank 0 exports the model", flush=True)


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
            from omegaconf import OmegaConf

            from tools.recipe.compose import resolved_yaml

            print(f"# {plan.stage_dir / CONFIG_FILE} (config hash {plan.config_hash})")
            print(resolved_yaml(OmegaConf.create(plan.cfg)), end="")
            print(f"# engine command ({plan.engine.__name__.rsplit('.', 1)[1]}):")
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
