"""The ``run:`` section of a resolved stage config (its provenance) and the checks made before it is written.

``run:`` records the initial model, the parent's config hash, the data split manifest and its sha256, how the
data were split (``split_unit``, ``split`` where the manifest names one, e.g. ``authors-v2``) and the
validation data of model selection. The manifest's sha256 counts only once the data files beside it are the
ones it lists.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

from tools.common.errors import UserError, read_json
from tools.data.check import check_files


class RunError(UserError, RuntimeError):
    """A stage that cannot run as asked; the message says what to do instead."""


def note_or_raise(message: str, dry_run: bool) -> None:
    """A problem that stops a real run; a dry run only notes it."""
    if not dry_run:
        raise RunError(message)
    print(f"# note: {message}")


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
