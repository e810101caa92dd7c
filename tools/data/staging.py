"""All-or-nothing output folders: write into a fresh sibling, swap it in at the end; per-file sha256."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.common.errors import naming
from tools.common.manifest import MANIFEST
from tools.data.errors import DataError
from tools.data.items import absolute


@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """A new empty folder beside ``out`` to write the whole output into.

    On success it replaces ``out`` (the old one is renamed aside, then removed); on any error or interruption
    it is removed and ``out`` is left as it was. An existing ``out`` must be empty or hold a ``manifest.json``
    (a previous conversion): anything else is refused, never deleted.
    """
    out = absolute(out)
    _recover(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise DataError(
            f"refusing to replace {out}: it is not an output of `pathvlm data` (no {MANIFEST}); "
            "choose another --out or remove it yourself"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    staging = out.parent / f".{out.name}.new-{tag}"
    staging.mkdir()
    try:
        with naming(out):  # a write failing on a full disk names --out
            yield staging
        if out.exists():
            old = out.parent / f".{out.name}.old-{tag}"
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(out: Path) -> None:
    """Tidy what a killed conversion left beside ``out``: remove its half-written ``.new-`` folder, and put
    back the previous output if it was killed between the two renames (``out`` missing, ``.old-`` present)."""
    for leftover in sorted(out.parent.glob(f".{out.name}.*-*-*")):
        kind, _, tag = leftover.name[len(out.name) + 2 :].partition("-")
        pid = tag.split("-", 1)[0]
        if kind not in ("new", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == "old" and not out.exists():
            leftover.rename(out)
            print(f"restored the previous output {out} from {leftover.name}", file=sys.stderr)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
