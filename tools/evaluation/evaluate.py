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
``<data>/{omnimedvqa,pathvqa,mmmu}/eval/*.jsonl`` present, one ``pathvlm eval`` process per model. The base
model and the image limits (applied to the base model too) default to what the size's stage configs agree on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tools.common.errors import naming
from tools.common.paths import data_root, runs_root
from tools.evaluation.scorings import SCORINGS, authors_scorings

ITEM_KEYS = ("id", "subset", "image", "question", "options", "answer")
IN_DOMAIN_DATASET = "test"
# `pathvlm data <name>` outputs that `eval-all` (make eval / baselines) evaluates when converted
EXTRA_BENCHMARKS = ("omnimedvqa", "pathvqa", "mmmu")
# What evaluation takes over from the training configs: the base model and the image size limits.
TRAINING_KEYS = {
    "base_model": ("base_model",),
    "max_pixels": ("easyr1.data.max_pixels", "llamafactory.image_max_pixels"),
    "min_pixels": ("easyr1.data.min_pixels", "llamafactory.image_min_pixels"),
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_items(path: Path) -> list[dict[str, Any]]:
    """Eval rows ``{id, subset, image, question, options, answer}``; ids must be unique."""
    from tools.evaluation.eval_files import EvalFileError, jsonl_objects

    items, seen = [], set()
    for line_no, item in jsonl_objects(path):
        missing = [key for key in ITEM_KEYS if key not in item]
        if missing:
            raise EvalFileError(
                f"{path}:{line_no}: eval item lacks {missing}; expected keys {list(ITEM_KEYS)}"
            )
        item["id"] = str(item["id"])
        if item["id"] in seen:
            raise EvalFileError(f"{path}:{line_no}: duplicate id {item['id']!r}")
        seen.add(item["id"])
        items.append(item)
    if not items:
        raise EvalFileError(f"{path}: no eval items (convert the data again: pathvlm data)")
    return items


def run_dir_of(model: str) -> Path | None:
    """``<runs>/<size>/<stage>`` when ``model`` is a stage export ``.../<size>/<stage>/model``."""
    path = Path(model)
    if path.name == "model" and path.is_dir():
        run_dir = path.absolute().parent
        if (run_dir / "DONE").exists() or (run_dir / "config.yaml").exists():
            return run_dir
    return None


def api_stage(model: str) -> str:
    """The folder name of an API model under ``<runs>/api/``: ``gpt-4o``, ``gemini-1.5-pro``."""
    return model.rstrip("/").rsplit("/", 1)[-1].lower()


def output_dir(
    model: str, dataset: str, out: Path | None, size: str | None, runs: Path, api: bool = False
) -> Path:
    """Where ``items.jsonl`` / ``summary.json`` for this model and dataset go (see the module doc)."""
    if out is not None:
        return out / dataset
    if api:
        from tools.recipe.run import API_SIZE

        return runs / API_SIZE / api_stage(model) / "eval" / dataset
    run_dir = run_dir_of(model)
    if run_dir is not None:
        return run_dir / "eval" / dataset
    if size is not None:
        return runs / size / "base" / "eval" / dataset
    raise SystemExit(f"{model} is not a <runs>/<size>/<stage>/model export: pass --out DIR or --size SIZE")


def score(output: str, answer: str) -> dict[str, Any]:
    """Strict/letter correctness, parsed choice and format check of one output, with the reward code."""
    from rewards import accuracy_reward, extract_answer, format_reward, parse_choice
    from rewards.rules import ground_truth_choice

    truth = ground_truth_choice(answer)
    if truth is None:
        raise ValueError(f"ground truth {answer!r} is not an option string like 'C) text'")
    content = extract_answer(output)
    correct = accuracy_reward(output, answer) == 1.0
    # The gold option itself may read like a list ("D) Both A) and B)"), which parse_choice declines.
    parsed = truth if correct else parse_choice(content) if content is not None else None
    return {
        "parsed_letter": parsed[0] if parsed else None,
        "parsed_text": parsed[1] if parsed else None,
        "correct": correct,
        "letter_correct": parsed is not None and parsed[0] == truth[0],
        "format_ok": format_reward(output) == 1.0,
    }


def cap_rate(records: Sequence[dict[str, Any]], max_new_tokens: int | None) -> float | None:
    """Share of responses with ``max_new_tokens`` output tokens (cut by the limit); None without a limit."""
    if not max_new_tokens:
        return None
    return sum(r["output_tokens"] >= max_new_tokens for r in records) / len(records)


def scorings(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The authors' two accuracies (tools/evaluation/scorings.py); None where a record predates them."""
    return {
        name: (
            sum(r[f"{name}_correct"] for r in records) / len(records)
            if all(f"{name}_correct" in r for r in records)
            else None
        )
        for name in SCORINGS
    }


def summarize(records: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The summary JSON: accuracies with bootstrap CIs, token and failure rates, per-subset accuracy."""
    from tools.evaluation.eval_files import ids_sha256
    from tools.evaluation.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_ci

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return sum(values) / len(values)

    correct = [float(r["correct"]) for r in records]
    letter = [float(r["letter_correct"]) for r in records]
    tokens = [float(r["output_tokens"]) for r in records]
    by_subset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_subset[record["subset"]].append(record)
    return {
        **meta,
        "n": len(records),
        "ids_sha256": ids_sha256(r["id"] for r in records),
        "accuracy": mean(correct),
        "accuracy_ci": list(bootstrap_ci(correct)),
        "letter_accuracy": mean(letter),
        "letter_accuracy_ci": list(bootstrap_ci(letter)),
        "avg_output_tokens": mean(tokens),
        "avg_output_tokens_ci": list(bootstrap_ci(tokens)),
        "format_failure_rate": mean(0.0 if r["format_ok"] else 1.0 for r in records),
        "parse_failure_rate": mean(1.0 if r["parsed_letter"] is None else 0.0 for r in records),
        # as the authors report them (protocol/final_unified_results_tables_20260814.json): answers the
        # parser can read, and responses that ran to the token limit (no end-of-sequence before it)
        "parse_rate": mean(0.0 if r["parsed_letter"] is None else 1.0 for r in records),
        "cap_rate": cap_rate(records, meta.get("max_new_tokens")),
        "scorings": scorings(records),
        "per_subset": {
            subset: {
                "n": len(rows),
                "accuracy": mean(float(r["correct"]) for r in rows),
                "letter_accuracy": mean(float(r["letter_correct"]) for r in rows),
                "scorings": scorings(rows),
            }
            for subset, rows in sorted(by_subset.items())
        },
        "bootstrap": {"confidence": 0.95, "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
    }


def is_up_to_date(out_dir: Path, config: dict[str, Any], n_items: int) -> bool:
    from tools.evaluation.eval_files import SUMMARY_FILE, identity, read_json

    if not (out_dir / SUMMARY_FILE).exists():
        return False
    summary = read_json(out_dir / SUMMARY_FILE)
    return summary.get("n") == n_items and identity(summary) == identity(config)


def evaluate_dataset(
    backend, data: Path, out_dir: Path, batch_size: int, config: dict[str, Any]
) -> dict[str, Any]:
    """Answer every item not yet in ``out_dir/items.jsonl``, then write and return the summary.

    The folder is locked for the duration; its ``config.json`` is written (or checked) before any item.
    """
    from tools.evaluation.eval_files import ITEMS_FILE, claim_folder, eval_lock

    with eval_lock(out_dir), naming(out_dir):  # a write failing on a full disk names the folder
        claim_folder(out_dir, config)
        return _answer_and_summarize(backend, data, out_dir / ITEMS_FILE, batch_size, config)


def _answer_and_summarize(
    backend, data: Path, items_path: Path, batch_size: int, config: dict[str, Any]
) -> dict[str, Any]:
    from tqdm import tqdm

    from tools.common.prompt import build_prompt
    from tools.evaluation.eval_backends import Request
    from tools.evaluation.eval_files import SUMMARY_FILE, EvalFileError, read_records, write_json

    items = load_items(data)
    out_dir = items_path.parent
    try:
        done = read_records(items_path, repair=True) if items_path.exists() else {}
    except EvalFileError as error:
        raise SystemExit(f"{error}; fix the line or delete the directory and rerun") from error
    known = {item["id"] for item in items}
    foreign = [(line_no, id_) for line_no, id_ in enumerate(done, 1) if id_ not in known]
    if foreign:
        line_no, id_ = foreign[0]
        raise SystemExit(
            f"{items_path}:{line_no}: id {id_!r} is not in {data} ({len(foreign)} such record(s)); "
            "delete the directory and rerun"
        )
    todo = [item for item in items if item["id"] not in done]
    sampled = config.get("samples") is not None
    started, generated = time.perf_counter(), 0
    unanswered: list[str] = []
    with (
        items_path.open("a", encoding="utf-8") as handle,
        tqdm(total=len(items), initial=len(done), desc=f"eval {out_dir.name}", unit="item") as progress,
    ):
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            prompts = [build_prompt(item["question"], item["options"]) for item in batch]
            requests = [Request(p, item["image"]) for p, item in zip(prompts, batch, strict=True)]
            generations = backend.generate_samples(requests) if sampled else backend.generate(requests)
            for item, prompt, generation in zip(batch, prompts, generations, strict=True):
                if generation is None:  # an API item without a reply: left for the rerun
                    unanswered.append(item["id"])
                    continue
                samples = generation if isinstance(generation, list) else [generation]
                record = {
                    "id": item["id"],
                    "subset": item["subset"],
                    "image": item["image"],
                    "prompt_sha256": hashlib.sha256(backend.render(prompt).encode("utf-8")).hexdigest(),
                    "output": samples[0].text,
                    **score(samples[0].text, item["answer"]),
                    **authors_scorings(samples[0].text, item["options"], item["answer"]),
                    "output_tokens": samples[0].output_tokens,
                }
                if sampled:
                    record["sample_outputs"] = [sample.text for sample in samples]
                    record["sample_correct"] = [score(x.text, item["answer"])["correct"] for x in samples]
                    record["sample_output_tokens"] = [sample.output_tokens for sample in samples]
                done[item["id"]] = record
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            generated += len(batch)
            progress.update(len(batch))
    elapsed = time.perf_counter() - started
    if unanswered:
        raise SystemExit(
            f"{out_dir}: {len(unanswered)} item(s) got no reply (e.g. {unanswered[0]!r}; "
            f"{backend.accounting().get('failures')}); the answered ones are kept: rerun to resume"
        )
    meta = {
        **config,
        "dataset": out_dir.name,
        "data": str(data.resolve()),
        "items_per_second": generated / elapsed if generated else None,
        **({"api_usage": backend.accounting()} if backend.accounting() else {}),
    }
    summary = summarize([done[item["id"]] for item in items], meta)
    if sampled:
        from tools.evaluation.passk import estimate

        counts = [sum(done[item["id"]]["sample_correct"]) for item in items]
        summary["pass_at_k"] = estimate(counts, config["samples"])
    write_json(out_dir / SUMMARY_FILE, summary)
    return summary


def local_model_problem(model: str) -> str | None:
    """Why the local model ``model`` cannot be loaded (a folder lacking files, or a path that is not
    there), checked before loading it; None for a complete folder or a hub id (``org/name``)."""
    from tools.common.model_dir import ModelDirError, require_model_dir

    path = Path(model)
    if not path.exists():
        local = model.startswith(("/", ".", "~")) or model.count("/") > 1
        return f"{model}: model folder not found" if local else None
    try:
        require_model_dir(path)
    except ModelDirError as exc:
        return str(exc)
    return None


def evaluate(args: argparse.Namespace) -> int:
    from tools.evaluation.eval_backends import DEFAULT_BATCH_SIZE, make_backend
    from tools.evaluation.eval_files import model_sha256

    run_dir = run_dir_of(args.model)
    if run_dir is not None and (run_dir / "config.yaml").exists():
        trained = training_settings([run_dir / "config.yaml"], "--max-pixels / --min-pixels")
        args.max_pixels = args.max_pixels or trained.get("max_pixels")
        args.min_pixels = args.min_pixels or trained.get("min_pixels")
    api = args.backend == "openai"
    if api and (args.max_pixels or args.min_pixels):
        raise SystemExit(
            "--backend openai sends images as they are: --max-pixels / --min-pixels do not apply"
        )
    if not api and (problem := local_model_problem(args.model)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    sampling = _sampling(args)
    jobs = []
    # An API model is its name (the endpoint may move: a proxy, a vllm serve on another port).
    model_hash = model_sha256(f"openai:{args.model}" if api else args.model)
    for data in args.data:
        if not data.is_file():
            raise SystemExit(f"{data}: eval data file not found")
        dataset = data.stem if args.out is not None or sampling is None else sampled_dataset(data.stem, args)
        out_dir = output_dir(args.model, dataset, args.out, args.size, args.runs, api=api)
        config = {
            "model": str(Path(args.model).absolute()) if Path(args.model).exists() else args.model,
            "model_sha256": model_hash,
            "backend": args.backend,
            "data_sha256": file_sha256(data),
            "max_new_tokens": args.max_new_tokens,
            "temperature": 0.0 if sampling is None else sampling["temperature"],
            **(sampling or {}),
            "max_pixels": args.max_pixels,
            "min_pixels": args.min_pixels,
            "dtype": args.dtype,
            **({"base_url": args.base_url} if api else {}),
        }
        if is_up_to_date(out_dir, config, len(load_items(data))):
            print(f"{out_dir}: up to date, skipped")
            continue
        out_dir.mkdir(
            parents=True, exist_ok=True
        )  # a folder that cannot be written fails before the model loads
        jobs.append((data, out_dir, config))
    if not jobs:
        return 0
    backend = make_backend(args.backend, args.model, **backend_kwargs(args))
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE[args.backend]
    try:
        for data, out_dir, config in jobs:
            summary = evaluate_dataset(backend, data, out_dir, batch_size, config)
            rate = summary["items_per_second"]
            usage = summary.get("api_usage")
            print(
                f"{out_dir}: n={summary['n']} accuracy={summary['accuracy']:.4f} "
                f"letter={summary['letter_accuracy']:.4f} tokens={summary['avg_output_tokens']:.1f}"
                + (f" ({rate:.2f} items/s)" if rate else "")
                + (
                    f" api: {usage['calls']} calls, {usage['retries']} retries, "
                    f"{usage['prompt_tokens']}+{usage['completion_tokens']} tokens, ${usage['cost_usd']:.4f}"
                    if usage
                    else ""
                )
            )
    finally:
        backend.close()
    return 0


def backend_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The backend's settings from the command line (the API's or the local model's)."""
    if args.backend == "openai":
        return {
            "max_new_tokens": args.max_new_tokens,
            "base_url": args.base_url,
            "api_key_env": args.api_key_env,
            "concurrency": args.concurrency,
            "max_retries": args.max_retries,
            "timeout_s": args.request_timeout,
            "usd_per_mtok_prompt": args.usd_per_mtok_prompt,
            "usd_per_mtok_completion": args.usd_per_mtok_completion,
        }
    kwargs = {
        "max_new_tokens": args.max_new_tokens,
        "max_pixels": args.max_pixels,
        "min_pixels": args.min_pixels,
        "dtype": args.dtype,
        **(_sampling(args) or {}),
    }
    if args.backend == "vllm":
        kwargs["tensor_parallel_size"] = args.tensor_parallel_size
        kwargs["max_model_len"] = args.max_prompt_length + args.max_new_tokens
    return kwargs


def _sampling(args: argparse.Namespace) -> dict[str, Any] | None:
    """``{samples, temperature, seed}`` of a pass@k evaluation (``--samples`` ≥ 2), None for greedy."""
    samples, temperature = getattr(args, "samples", 1), getattr(args, "temperature", None)
    if samples == 1:
        if temperature not in (None, 0.0):
            raise SystemExit("--temperature samples answers: pass --samples N (N >= 2) for pass@k")
        return None
    if args.backend == "openai":
        raise SystemExit("--samples (pass@k) evaluates local models: use --backend hf or vllm")
    temperature = 1.0 if temperature is None else temperature
    if temperature <= 0:
        raise SystemExit(f"--samples {samples} needs --temperature > 0 (got {temperature})")
    return {"samples": samples, "temperature": temperature, "seed": args.seed}


def sampled_dataset(stem: str, args: argparse.Namespace) -> str:
    """The folder name of a pass@k evaluation beside the greedy one: ``test-samples8-t1``."""
    sampling = _sampling(args) or {}
    return f"{stem}-samples{sampling['samples']}-t{sampling['temperature']:g}"


def eval_datasets(root: Path) -> list[Path]:
    """The in-domain test file and every converted OOD / extra benchmark file under the data root."""
    in_domain = root / "pathmmu" / "eval" / f"{IN_DOMAIN_DATASET}.jsonl"
    files = [in_domain] if in_domain.is_file() else []
    for benchmark in EXTRA_BENCHMARKS:
        files += sorted((root / benchmark / "eval").glob("*.jsonl"))
    return files


def _has_rows(path: Path) -> bool:
    with path.open("rb") as handle:
        return any(line.strip() for line in handle)


def stage_models(runs: Path, size: str) -> list[Path]:
    """Finished stage exports ``<runs>/<size>/<stage>/model`` (a ``DONE`` marker beside them)."""
    return sorted(path / "model" for path in (runs / size).glob("*") if (path / "DONE").exists())


def training_settings(config_paths: Sequence[Any], hint: str) -> dict[str, Any]:
    """``base_model``, ``max_pixels``, ``min_pixels`` as resolved stage configs (files, composed recipes or
    resolved dicts) set them (absent if unset).

    Pixels come from ``easyr1.data.{max,min}_pixels`` or ``llamafactory.image_{max,min}_pixels``; configs
    that disagree are an error naming ``hint`` (the flag that settles it).
    """
    from omegaconf import OmegaConf

    values: dict[str, set[Any]] = defaultdict(set)
    for path in config_paths:
        config = OmegaConf.load(path) if isinstance(path, Path) else OmegaConf.create(path)
        for key, selectors in TRAINING_KEYS.items():
            for selector in selectors:
                value = OmegaConf.select(config, selector)
                if value is not None:
                    values[key].add(value)
    conflicts = {key: sorted(map(str, found)) for key, found in values.items() if len(found) > 1}
    if conflicts:
        paths = ", ".join(map(str, config_paths))
        raise SystemExit(f"stage configs disagree on {conflicts} ({paths}); pass {hint}")
    return {key: found.pop() for key, found in values.items()}


def evaluate_all(args: argparse.Namespace) -> int:
    from tools.recipe.registry import profile

    args.backend = args.backend or profile(args.profile).eval_backend
    datasets = eval_datasets(args.data_root)
    if not datasets:
        raise SystemExit(
            f"{args.data_root}: no pathmmu/eval/test.jsonl nor {{{','.join(EXTRA_BENCHMARKS)}}}/eval/*.jsonl"
        )
    empty = [str(path) for path in datasets if not _has_rows(path)]
    if empty:  # `eval` would stop at it before evaluating any other file
        raise SystemExit(f"eval files without items (check them with pathvlm data check): {', '.join(empty)}")
    models = [] if args.base_only else [str(path) for path in stage_models(args.runs, args.size)]
    configs: list[Any] = sorted((args.runs / args.size).glob("*/config.yaml"))
    if not configs:  # nothing trained yet (baselines): what training would use
        from tools.recipe.compose import compose, one_stage_per_engine

        configs = [compose(stage, args.size, args.profile, []) for stage in one_stage_per_engine()]
    trained = training_settings(configs, "--base-model / --max-pixels / --min-pixels")
    if not args.no_base:
        base_model = args.base_model or trained.get("base_model")
        if base_model is None:
            raise SystemExit(f"{args.runs / args.size}: no stage config names base_model; pass --base-model")
        models.insert(0, base_model)
    passthrough = [
        "--backend",
        args.backend,
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--dtype",
        args.dtype,
        "--max-prompt-length",
        str(args.max_prompt_length),
        "--tensor-parallel-size",
        str(args.tensor_parallel_size),
    ]
    for flag, value in (
        ("--batch-size", args.batch_size),
        ("--max-pixels", args.max_pixels or trained.get("max_pixels")),
        ("--min-pixels", args.min_pixels or trained.get("min_pixels")),
    ):
        if value is not None:
            passthrough += [flag, str(value)]
    failed = []
    for model in models:
        command = [sys.executable, "-m", "tools.cli", "eval", "--model", model, "--size", args.size]
        command += ["--runs", str(args.runs), *passthrough]
        for data in datasets:
            command += ["--data", str(data)]
        print("+ " + " ".join(command), flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(model)
    if failed:
        print(f"evaluation failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def _add_generation_args(parser: argparse.ArgumentParser, eval_all: bool = False) -> None:
    """Generation flags of ``eval``, or of ``eval-all`` (local backends only, default: the profile's)."""
    from tools.evaluation.eval_backends import BACKENDS

    parser.add_argument(
        "--backend",
        choices=[b for b in BACKENDS if b != "openai"] if eval_all else BACKENDS,
        default=None if eval_all else "hf",
        help="hf (CPU/tests) or vllm (GPU); default: the profile's eval_backend"
        if eval_all
        else "hf (CPU/tests), vllm (GPU) or openai (an API: see below); default hf",
    )
    parser.add_argument("--batch-size", type=_positive_int, help="items per generate call (hf: 8, vllm: 512)")
    parser.add_argument(
        "--max-new-tokens", type=_positive_int, default=1024, help="default 1024 (the paper's)"
    )
    parser.add_argument(
        "--max-prompt-length",
        type=_positive_int,
        default=1024,
        help="vllm: max_model_len = this + --max-new-tokens (default 1024, the paper's prompt limit)",
    )
    parser.add_argument(
        "--tensor-parallel-size",
        type=_positive_int,
        default=1,
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
        default="auto",
        help="default: checkpoint's",
    )
    parser.add_argument(
        "--runs", type=Path, default=runs_root(), help="runs root (default: $PATHVLM_RUNS or runs)"
    )


def _add_api_args(parser: argparse.ArgumentParser) -> None:
    from tools.evaluation.eval_api import DEFAULT_BASE_URL

    api = parser.add_argument_group("--backend openai (any OpenAI-compatible chat endpoint with images)")
    api.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"endpoint (default {DEFAULT_BASE_URL})")
    api.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="variable holding the key (default OPENAI_API_KEY)"
    )
    api.add_argument("--concurrency", type=_positive_int, default=16, help="requests in flight (default 16)")
    api.add_argument("--max-retries", type=int, default=4, help="retries per item (default 4)")
    api.add_argument("--request-timeout", type=float, default=120.0, help="seconds per attempt (default 120)")
    api.add_argument("--usd-per-mtok-prompt", type=float, default=0.0, help="price per M prompt tokens")
    api.add_argument(
        "--usd-per-mtok-completion", type=float, default=0.0, help="price per M completion tokens"
    )


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
        default=1,
        help="answers sampled per item (>= 2: pass@k for k = 1, 2, 4, 8 up to N; default 1 = greedy)",
    )
    sampling.add_argument(
        "--temperature", type=float, help="sampling temperature with --samples (default 1; greedy: 0)"
    )
    sampling.add_argument("--seed", type=int, default=0, help="sampling seed with --samples (default 0)")
    _add_api_args(parser)
    parser.set_defaults(func=evaluate)

    from tools.recipe import registry
    from tools.recipe.cli import with_profile_size
    from tools.recipe.compose import DEFAULT_PROFILE

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
    parser_all.set_defaults(func=with_profile_size(evaluate_all))
