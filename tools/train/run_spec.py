"""Where a stage starts and the ``run:`` section of its resolved config (its provenance), checked before the
config is written.

A stage starts from its parent's exported model (same seed; the parent must be DONE, else the command that
makes it is named) or from the base model (a stand-in profile's local model must have been built: the
``pathvlm tiny-model`` command is named; a hub id must be in the Hugging Face cache).

``run:`` records the initial model, the parent's config hash, the data split manifest and its sha256, how the
data were split (``split_unit``, ``split`` where the manifest names one, e.g. ``authors-v2``) and the
validation data of model selection. The manifest's sha256 counts only once the data files beside it are the
ones it lists.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.common import paths
from tools.common.errors import UserError, read_json
from tools.common.manifest import check_files
from tools.recipe import compose as recipes
from tools.recipe.compose import DEFAULT_BUDGET
from tools.recipe.registry import ProfileInfo
from tools.recipe.run import Run
from tools.train.models import require_cached

TINY_MODEL_COMMAND = "pathvlm tiny-model --out {path}"  # what builds a stand-in profile's base model


class RunError(UserError, RuntimeError):
    """A stage that cannot run as asked; the message says what to do instead."""


def note_or_raise(message: str, dry_run: bool) -> None:
    """A problem that stops a real run; a dry run only notes it."""
    if not dry_run:
        raise RunError(message)
    print(f"# note: {message}")


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


def initial_model(
    cfg: dict[str, Any], info: ProfileInfo, runs_root: Path, dry_run: bool
) -> tuple[str, str | None]:
    """(model path or hub id, parent's config hash): the parent's export (same seed), or the base model."""
    parent, size, profile = cfg.get("parent"), cfg["size"], cfg["profile"]
    if parent is None:
        base = cfg["base_model"]
        if not Path(base).exists():
            require_base_model(base, info, size, dry_run)
        return (str(Path(base).resolve()) if Path(base).exists() else base), None
    seed = None if cfg["seed"] == recipes.default_seed() else cfg["seed"]
    parent_run = Run.of(runs_root, size, parent, seed, recipes.default_seed())
    if not parent_run.done.is_file():
        make_it = run_command(parent, size, profile, runs_root, budget=cfg["budget"], seed=seed)
        note_or_raise(
            f"stage {cfg['stage']} starts from {parent}, which has not finished ({parent_run.done} is "
            f"missing). Make it first:\n  {make_it}",
            dry_run,
        )
        return str(parent_run.model.resolve()), None
    return str(parent_run.model.resolve()), parent_run.done.read_text(encoding="utf-8").strip()


def require_base_model(base: str, info: ProfileInfo, size: str, dry_run: bool) -> None:
    """A stand-in profile's local base model must have been built (the command is named); a hub id must be in
    the Hugging Face cache (compute nodes are offline: ``make models``)."""
    if info.stand_in_size is not None:
        build = TINY_MODEL_COMMAND.format(path=shlex.quote(base))
        note_or_raise(f"base model {base} does not exist: build it first with `{build}`", dry_run)
    elif not dry_run:
        require_cached(base, size)


def require_frozen_vision(cfg: dict[str, Any]) -> None:
    """The paper freezes the vision encoder in every stage; refuse a recipe that does not."""
    if cfg["engine"] == "llamafactory":
        key, frozen = "llamafactory.freeze_vision_tower", cfg["llamafactory"].get("freeze_vision_tower", True)
    else:
        key = "easyr1.worker.actor.model.freeze_vision_tower"
        frozen = cfg["easyr1"]["worker"]["actor"]["model"].get("freeze_vision_tower", False)
    if frozen is not True:
        raise RunError(f"{key} is {frozen!r}: the vision tower stays frozen in every stage (set it to true)")


def manifest_path(cfg: dict[str, Any]) -> Path:
    """``<data>/manifest.json`` beside the ``llamafactory/`` and ``easyr1/`` folders the recipe reads."""
    if cfg["engine"] == "llamafactory":
        return Path(cfg["llamafactory"]["dataset_dir"]).parent / "manifest.json"
    return Path(str(cfg["easyr1"]["data"]["train_files"]).split("@", 1)[0]).parent.parent / "manifest.json"


def data_fields(manifest: Path, dry_run: bool) -> dict[str, Any]:
    """``manifest``, ``manifest_sha256`` and the split fields of the ``run:`` section."""
    return {
        "manifest": str(manifest),
        "manifest_sha256": _sha256(manifest, dry_run),
        **_split_fields(manifest),
    }


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
    if not path.is_file():
        note_or_raise(
            f"data manifest {path} not found: generate the data first (`make data` / `pathvlm data`)"
            if not dry_run
            else f"data manifest {path} not found; generate the data before a real run",
            dry_run,
        )
        return None
    problems = check_files(path.parent, path)
    if problems:
        message = "\n  ".join(
            [f"the data in {path.parent} is not what its manifest lists:", *problems[:10]]
            + [f"... and {len(problems) - 10} more"] * (len(problems) > 10)
        )
        check = f"pathvlm data check {shlex.quote(str(path.parent))}"
        note_or_raise(f"{message}\nconvert the data again, then check it:\n  {check}", dry_run)
    return hashlib.sha256(path.read_bytes()).hexdigest()
