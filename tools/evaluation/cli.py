"""Evaluate a model on eval JSONL files: greedy answers, scored with the training reward's parser.

``pathvlm eval --model M --data F.jsonl [--data G.jsonl ...]`` writes, per data file ``<dataset>.jsonl``:

- ``items.jsonl``: one record per item: ``id, subset, image`` (the data file's image path: questions on
  one image form a cluster for ``pathvlm report``'s image-cluster bootstrap), ``prompt_sha256`` (of the
  exact chat text the model sees), ``output``, ``parsed_letter``, ``parsed_text``
  (``rewards.parse_choice`` on the last ``<answer>``), ``correct`` (strict: letter and text,
  ``rewards.accuracy_reward``; the paper's metric), ``letter_correct``, ``output_tokens``, ``format_ok``
  (``rewards.format_reward``), ``official_correct`` and ``contract_aligned_correct`` (the authors' two
  scorings);
- ``summary.json``: strict and letter accuracy with seeded 95 % bootstrap CIs, average output tokens (with
  CI), format- and parse-failure rates, ``parse_rate`` (answers the parser reads) and ``cap_rate`` (responses
  cut by ``max_new_tokens``), ``scorings`` (the authors' ``contract_aligned`` and ``official`` accuracies,
  tools/evaluation/scorings.py; also per subset), per-subset accuracy, n, model, backend, data file and its
  sha256;
- ``config.json``: the folder's identity (model and its hash, data sha256, decoding settings), written
  before the first item and checked on resume and by ``pathvlm report`` (``tools/evaluation/eval_files.py``).

Where the files go (``<dataset>`` is the data file's stem: ``test``, ``chest_ct_scan``, ...):

- ``--out DIR``: ``DIR/<dataset>/``;
- else, ``--backend openai --model NAME``: ``<runs>/api/<name>/eval/<dataset>/`` (``gpt-4o``,
  ``gemini-1.5-pro``; see ``tools/evaluation/eval_api.py`` for the API backend);
- else, a model under ``<runs>/<size>/<stage>/model``: ``<runs>/<size>/<stage>/eval/<dataset>/``;
- else ``--size S`` (a base model id or any other path): ``<runs>/S/base/eval/<dataset>/``.

pass@k (``tools/evaluation/passk.py``): ``--samples N`` (N ≥ 2) draws N answers per item at ``--temperature``
(default 1) instead of one greedy answer; each record adds ``sample_outputs``, ``sample_correct`` and
``sample_output_tokens`` (its ``output`` and ``correct`` are the first sample's), the summary adds
``pass_at_k``, and the folder is ``<dataset>-samples<N>-t<T>`` beside the greedy one (``--out DIR``:
``DIR/<dataset>``). Samples, temperature and seed are part of the folder's identity, so greedy and sampled
records never mix; ``pathvlm report`` reads sampled folders only for its pass@k table.

Images are limited like training: ``--max-pixels`` / ``--min-pixels``, by default the values in a stage
export's ``config.yaml`` (``easyr1.data.*_pixels`` / ``llamafactory.image_*_pixels``), else the
processor's own limits.

Items are written and flushed after every batch; an interrupted evaluation started again with the same
settings skips the ids already in ``items.jsonl`` (a half-written last line is dropped, with a message).
Records of another identity, ids not in the data file, duplicates and corrupt lines are errors naming
the file and line; ``eval.lock`` keeps a second evaluation out of a folder. A finished dataset (summary
present for the same identity) is skipped without loading the model.

``pathvlm eval-all --size S`` evaluates every finished stage model (``<runs>/S/<stage>/model`` with
``DONE``) and the base model on ``<data>/pathmmu/eval/test.jsonl`` and each
``<data>/{omnimedvqa,pathvqa,mmmu}/eval/*.jsonl`` present, one model after the other (with vLLM each in its
own process, whose end frees the GPU memory). The base model and the image limits (applied to the base
model too) default to what the size's stage configs agree on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.common.paths import data_root, runs_root
from tools.evaluation.eval_all import evaluate_all
from tools.evaluation.evaluate import evaluate
from tools.evaluation.generation import BACKENDS, LOCAL_BACKENDS
from tools.evaluation.settings import DEFAULT_BASE_URL, EvalSettings
from tools.recipe import registry
from tools.recipe.cli import with_profile_size
from tools.recipe.compose import DEFAULT_PROFILE


def _eval(args: argparse.Namespace) -> int:
    settings = EvalSettings.from_args(args)
    evaluate(args.model, args.data, settings, out=args.out, size=args.size, runs=args.runs)
    return 0


def _eval_all(args: argparse.Namespace) -> int:
    settings = EvalSettings.from_args(
        args, backend=args.backend or registry.profile(args.profile).eval_backend
    )
    return evaluate_all(
        args.size,
        args.runs,
        args.data_root,
        args.profile,
        settings,
        base_model=args.base_model,
        base=not args.no_base,
        stages=not args.base_only,
    )


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def _add_generation_args(parser: argparse.ArgumentParser, eval_all: bool = False) -> None:
    """Generation flags of ``eval``, or of ``eval-all`` (local backends only, default: the profile's).

    Their defaults are ``EvalSettings``'s: a flag not given is None here and left out of the settings."""
    parser.add_argument(
        "--backend",
        choices=LOCAL_BACKENDS if eval_all else BACKENDS,
        help="hf (CPU/tests) or vllm (GPU); default: the profile's eval_backend"
        if eval_all
        else "hf (CPU/tests), vllm (GPU) or openai (an API: see below); default hf",
    )
    parser.add_argument("--batch-size", type=_positive_int, help="items per generate call (hf: 8, vllm: 512)")
    parser.add_argument("--max-new-tokens", type=_positive_int, help="default 1024 (the paper's)")
    parser.add_argument(
        "--max-prompt-length",
        type=_positive_int,
        help="vllm: max_model_len = this + --max-new-tokens (default 1024, the paper's prompt limit)",
    )
    parser.add_argument(
        "--tensor-parallel-size",
        type=_positive_int,
        help="vllm: GPUs per model, for one too large for a GPU (e.g. 2 for Qwen2.5-VL-32B; default 1)",
    )
    parser.add_argument(
        "--max-pixels",
        type=_positive_int,
        help="cap image area like training (default: the training config's, else the processor's limit)",
    )
    parser.add_argument(
        "--min-pixels",
        type=_positive_int,
        help="raise small images like training (default: the training config's, else none)",
    )
    parser.add_argument(
        "--dtype",
        choices=("auto", "bfloat16", "float16", "float32"),
        help="default: checkpoint's",
    )
    parser.add_argument(
        "--runs", type=Path, default=runs_root(), help="runs root (default: $PATHVLM_RUNS or runs)"
    )


def _add_api_args(parser: argparse.ArgumentParser) -> None:
    api = parser.add_argument_group("--backend openai (any OpenAI-compatible chat endpoint with images)")
    api.add_argument("--base-url", help=f"endpoint (default {DEFAULT_BASE_URL})")
    api.add_argument("--api-key-env", help="variable holding the key (default OPENAI_API_KEY)")
    api.add_argument("--concurrency", type=_positive_int, help="requests in flight (default 16)")
    api.add_argument("--max-retries", type=int, help="retries per item (default 4)")
    api.add_argument("--request-timeout", type=float, help="seconds per attempt (default 120)")
    api.add_argument("--usd-per-mtok-prompt", type=float, help="price per M prompt tokens")
    api.add_argument("--usd-per-mtok-completion", type=float, help="price per M completion tokens")


def register(subparsers: argparse._SubParsersAction) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser(
        "eval", help="evaluate one model on eval JSONL files", description=__doc__, formatter_class=formatter
    )
    parser.add_argument("--model", required=True, help="HF model id or directory (e.g. runs/7b/beta/model)")
    parser.add_argument(
        "--data", type=Path, action="append", required=True, help="eval JSONL file; repeat for several"
    )
    parser.add_argument("--out", type=Path, help="write to OUT/<dataset>/ (default: see above)")
    parser.add_argument("--size", help="model size (3b, 7b) for a base model's default output directory")
    _add_generation_args(parser)
    sampling = parser.add_argument_group("pass@k (tools/evaluation/passk.py)")
    sampling.add_argument(
        "--samples",
        type=_positive_int,
        help="answers sampled per item (>= 2: pass@k for k = 1, 2, 4, 8 up to N; default 1 = greedy)",
    )
    sampling.add_argument(
        "--temperature", type=float, help="sampling temperature with --samples (default 1; greedy: 0)"
    )
    sampling.add_argument("--seed", type=int, help="sampling seed with --samples (default 0)")
    _add_api_args(parser)
    parser.set_defaults(func=_eval)

    parser_all = subparsers.add_parser(
        "eval-all",
        help="evaluate every finished stage model and the base model of a size",
        description=__doc__[__doc__.index("``pathvlm eval-all") :],
        formatter_class=formatter,
    )
    parser_all.add_argument("--size", required=True, help="model size directory under the runs root (3b, 7b)")
    parser_all.add_argument(
        "--base-model", help="base model id or path (default: base_model in the size's stage configs)"
    )
    parser_all.add_argument("--no-base", action="store_true", help="skip the base model")
    parser_all.add_argument(
        "--base-only", action="store_true", help="only the base model (a baseline: make baselines)"
    )
    parser_all.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        choices=registry.profiles(),
        help="recipe profile: its eval_backend is the default --backend, its base model and image limits "
        f"apply before any stage is trained (default: {DEFAULT_PROFILE})",
    )
    parser_all.add_argument(
        "--data-root",
        type=Path,
        default=data_root(),
        help="generated data (default: $PATHVLM_DATA or data/generated)",
    )
    _add_generation_args(parser_all, eval_all=True)
    parser_all.set_defaults(func=with_profile_size(_eval_all))
