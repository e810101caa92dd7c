"""``pathvlm models``: fetch the hub models a size needs into the Hugging Face cache, on a login node.

Compute nodes run offline (the Makefile sets ``HF_HUB_OFFLINE=1``), so the base model of the size (the
``base_model`` of its recipes) and, when r1's judge is a self-hosted model rather than the OpenAI API, the
judge model (``PATHVLM_JUDGE_MODEL`` served at ``PATHVLM_JUDGE_BASE_URL``, e.g. by ``vllm serve``) must
be in the cache first: ``make models SIZE=7b`` runs ``hf download MODEL`` for each into ``$HF_HOME`` (point
it at a shared folder every node sees). The stage runner refuses a stage whose base model is not cached.
``--local-judge`` (``make models LOCAL_JUDGE=1``, as ``make pipeline LOCAL_JUDGE=1`` /
``slurm/pipeline.sh --local-judge`` serve it) also fetches the model ``slurm/judge.sbatch`` serves on a GPU
profile: ``PATHVLM_JUDGE_MODEL``, else ``LOCAL_JUDGE_MODEL`` (``python -m tools.train.models`` prints it).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tools.common.errors import UserError
from tools.recipe import registry
from tools.recipe.compose import DEFAULT_PROFILE, DEFAULT_SIZE, compose, judge_settings, to_container

OPENAI_HOST = "api.openai.com"
# The judge slurm/judge.sbatch serves by default, in bf16, tensor parallel over the judge job's GPUs, at most
# 4 (h20x4: 4). Qwen2.5-VL-32B: hidden 5120, MLP 27,648, 40 query / 8 KV heads, 64 layers; vision tower
# 16 heads, MLP 3,420. TP 4: MLP 27,648 / 4 = 6,912 = 54 x 128, heads 40 / 4 = 10, KV heads 8 / 4 = 2, vision
# 16 / 4 = 4 heads and 3,420 / 4 = 855: every shard whole (TP 2 likewise), the language model's a multiple of
# the 128 AWQ/Marlin kernels need, should a quantised copy be served (PATHVLM_JUDGE_MODEL=...-AWQ). Not TP 8:
# the vision MLP's 3,420 / 8 is not whole. Memory: 33.5e9 parameters x 2 bytes = 67 GB, 16.8 GB per GPU at
# TP 4 (H20 96 GB, A100/H100 80 GB): room for the KV cache.
# Not Qwen2.5-VL-72B-Instruct-AWQ: its MLP 29,568 / 4 = 7,392 = 57.75 x 128 does not load at TP 4 (nor at 2 or
# 8: vLLM issue 13640), and 72B in bf16 (145 GB) leaves 4 x 96 GB little KV cache room.
LOCAL_JUDGE_MODEL = "Qwen/Qwen2.5-VL-32B-Instruct"


class ModelNotCachedError(UserError, FileNotFoundError):
    """A hub model the stage needs is missing from the offline cache; the message names the command."""


def local_judge_model() -> str:
    """The model slurm/judge.sbatch serves on a GPU profile."""
    return os.environ.get("PATHVLM_JUDGE_MODEL") or LOCAL_JUDGE_MODEL


def needed(size: str, profile: str = DEFAULT_PROFILE, local_judge: bool = False) -> list[str]:
    """Hub ids the size needs: its base model, r1's judge model when it is self-hosted, and with
    ``local_judge`` the model slurm/judge.sbatch serves."""
    base = to_container(compose(next(iter(registry.stages())), size, profile))["base_model"]
    judge = judge_settings(size, profile)
    models = [base]
    if judge and OPENAI_HOST not in judge["base_url"] and "/" in judge["model"]:
        models.append(judge["model"])
    if local_judge:
        models.append(local_judge_model())
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
    parser.add_argument(
        "--local-judge",
        action="store_true",
        help="also the judge model slurm/judge.sbatch serves (slurm/pipeline.sh --local-judge): "
        f"$PATHVLM_JUDGE_MODEL, else {LOCAL_JUDGE_MODEL}",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the download commands only")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    commands = download_commands(needed(args.size, local_judge=args.local_judge))
    for command in commands:
        print(f"$ {shlex.join(command)}", flush=True)
        if not args.dry_run:
            code = subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "0"}).returncode
            if code != 0:
                print(f"error: {shlex.join(command)} failed with exit {code}", file=sys.stderr)
                return code
    return 0


if __name__ == "__main__":  # slurm/judge.sbatch: the model it serves on a GPU profile
    print(local_judge_model())
