"""``pathvlm models``: fetch the hub models a size needs into the Hugging Face cache, on a login node.

Compute nodes run offline (the Makefile sets ``HF_HUB_OFFLINE=1``), so the base model of the size (the
``base_model`` of its recipes) and, when r1's judge is a self-hosted model rather than the OpenAI API, the
judge model (``PATHVLM_JUDGE_MODEL`` served at ``PATHVLM_JUDGE_BASE_URL``, e.g. by ``vllm serve``) must
be in the cache first: ``make models SIZE=7b`` runs ``hf download MODEL`` for each into ``$HF_HOME`` (point
it at a shared folder every node sees). The stage runner refuses a stage whose base model is not cached.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tools.common.errors import UserError
from tools.train import registry
from tools.train.recipes import DEFAULT_PROFILE, DEFAULT_SIZE, compose, judge_settings, to_container

OPENAI_HOST = "api.openai.com"


class ModelNotCachedError(UserError, FileNotFoundError):
    """A hub model the stage needs is missing from the offline cache; the message names the command."""


def needed(size: str, profile: str = DEFAULT_PROFILE) -> list[str]:
    """Hub ids the size needs: its base model, and r1's judge model when it is self-hosted."""
    base = to_container(compose(next(iter(registry.stages())), size, profile))["base_model"]
    judge = judge_settings(size, profile)
    models = [base]
    if judge and OPENAI_HOST not in judge["base_url"] and "/" in judge["model"]:
        models.append(judge["model"])
    return [m for m in dict.fromkeys(models) if not Path(m).exists()]


def download_commands(models: list[str]) -> list[list[str]]:
    hf = Path(sys.executable).with_name("hf")
    return [[str(hf) if hf.exists() else "hf", "download", model] for model in models]


def require_cached(model: str, size: str) -> None:
    """Raise ``ModelNotCachedError`` when hub id ``model`` is not in the local Hugging Face cache."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(model, local_files_only=True)
    except LocalEntryNotFoundError as exc:
        from huggingface_hub.constants import HF_HUB_CACHE

        raise ModelNotCachedError(
            f"base model {model} is not in the Hugging Face cache ({HF_HUB_CACHE}), and compute nodes run "
            f"offline. Fetch it on a login node with the same HF_HOME:\n  make models SIZE={size}"
        ) from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="download a size's base model (and a self-hosted judge model) into the Hugging Face cache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--size", default=DEFAULT_SIZE, choices=registry.sizes(), help=f"model size (default: {DEFAULT_SIZE})"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the download commands only")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    commands = download_commands(needed(args.size))
    for command in commands:
        print(f"$ {shlex.join(command)}", flush=True)
        if not args.dry_run:
            code = subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "0"}).returncode
            if code != 0:
                print(f"error: {shlex.join(command)} failed with exit {code}", file=sys.stderr)
                return code
    return 0
