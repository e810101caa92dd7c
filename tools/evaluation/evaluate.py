"""``evaluate(model, datasets, settings)``: answer every item of each eval file, score it, summarise.

The folder layout, the files and the resume rules are in ``tools/evaluation/cli.py``'s doc (``pathvlm eval
--help``). ``evaluate_separately`` runs the same in a child process where the backend (vLLM) holds GPU
memory that only the process's end frees.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tools.common.errors import UserError, naming
from tools.common.model_dir import ModelDirError, require_model_dir
from tools.common.paths import runs_root
from tools.common.prompt import build_prompt
from tools.evaluation import passk
from tools.evaluation.eval_api import OpenAIBackend
from tools.evaluation.eval_backends import HFBackend, VLLMBackend
from tools.evaluation.eval_files import (
    ITEMS_FILE,
    SUMMARY_FILE,
    EvalFileError,
    claim_folder,
    eval_lock,
    file_sha256,
    identity,
    load_items,
    model_sha256,
    read_json,
    read_records,
    write_json,
)
from tools.evaluation.generation import Backend, Request
from tools.evaluation.score import score, summarize
from tools.evaluation.scorings import authors_scorings
from tools.evaluation.settings import EvalSettings, training_settings
from tools.recipe.run import BASE, Run, api_run

BACKEND_CLASSES = {"hf": HFBackend, "vllm": VLLMBackend, "openai": OpenAIBackend}


def make_backend(model: str, settings: EvalSettings) -> Backend:
    """The backend ``settings.backend`` names (one of ``BACKENDS``), loaded with ``model``."""
    return BACKEND_CLASSES[settings.backend](model, settings)


def output_dir(
    model: str, dataset: str, out: Path | None, size: str | None, runs: Path, api: bool = False
) -> Path:
    """Where ``items.jsonl`` / ``summary.json`` for this model and dataset go (``pathvlm eval --help``)."""
    if out is not None:
        return out / dataset
    if api:
        return api_run(runs, model).eval_dir(dataset)
    run = Run.of_model(model)
    if run is not None:
        return run.eval_dir(dataset)
    if size is not None:
        return Run(runs, size, BASE).eval_dir(dataset)
    raise SystemExit(f"{model} is not a <runs>/<size>/<stage>/model export: pass --out DIR or --size SIZE")


def check_local_model(model: str) -> None:
    """Stop before loading when the local model ``model`` cannot be loaded (a folder lacking files, or a path
    that is not there); a complete folder or a hub id (``org/name``) passes."""
    path = Path(model)
    if not path.exists():
        if model.startswith(("/", ".", "~")) or model.count("/") > 1:
            raise UserError(f"{model}: model folder not found")
        return
    try:
        require_model_dir(path)
    except ModelDirError as exc:
        raise UserError(str(exc)) from exc


def evaluate(
    model: str,
    datasets: Sequence[Path],
    settings: EvalSettings,
    out: Path | None = None,
    size: str | None = None,
    runs: Path | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``model`` on each eval file; return the summaries of the files evaluated now.

    A stage export's own ``config.yaml`` sets the image limits no flag set; a folder already summarised
    for the same identity is skipped without loading the model."""
    runs = runs_root() if runs is None else runs
    run = Run.of_model(model)
    if run is not None and run.config.exists():
        trained = training_settings([run.config], "--max-pixels / --min-pixels")
        settings = settings.with_training_limits(trained)
    if not settings.api:
        check_local_model(model)
    # An API model is its name (the endpoint may move: a proxy, a vllm serve on another port).
    model_hash = model_sha256(f"openai:{model}" if settings.api else model)
    jobs = []
    for data in datasets:
        if not data.is_file():
            raise SystemExit(f"{data}: eval data file not found")
        dataset = data.stem if out is not None else settings.dataset(data.stem)
        out_dir = output_dir(model, dataset, out, size, runs, api=settings.api)
        config = {
            "model": str(Path(model).absolute()) if Path(model).exists() else model,
            "model_sha256": model_hash,
            "backend": settings.backend,
            "data_sha256": file_sha256(data),
            **settings.decoding(),
        }
        if is_up_to_date(out_dir, config, len(load_items(data))):
            print(f"{out_dir}: up to date, skipped")
            continue
        # a folder that cannot be written fails before the model loads
        out_dir.mkdir(parents=True, exist_ok=True)
        jobs.append((data, out_dir, config))
    if not jobs:
        return []
    backend = make_backend(model, settings)
    summaries = []
    try:
        for data, out_dir, config in jobs:
            summaries.append(evaluate_dataset(backend, data, out_dir, settings, config))
            print(summary_line(out_dir, summaries[-1]))
    finally:
        backend.close()
    return summaries


def evaluate_separately(
    model: str, datasets: Sequence[Path], settings: EvalSettings, out: Path | None = None, **where: Any
) -> bool:
    """``evaluate`` in this process, or for vLLM in a child process (its end frees the GPU memory vLLM
    holds, before the next model loads); True when it succeeded."""
    if settings.backend != "vllm":
        evaluate(model, datasets, settings, out, **where)
        return True
    child = multiprocessing.get_context("spawn").Process(
        target=evaluate, args=(model, list(datasets), settings, out), kwargs=where
    )
    child.start()
    child.join()
    return child.exitcode == 0


def summary_line(out_dir: Path, summary: dict[str, Any]) -> str:
    """One line per evaluated folder: accuracy, tokens, speed and the API's usage."""
    rate, usage = summary["items_per_second"], summary.get("api_usage")
    line = (
        f"{out_dir}: n={summary['n']} accuracy={summary['accuracy']:.4f} "
        f"letter={summary['letter_accuracy']:.4f} tokens={summary['avg_output_tokens']:.1f}"
    )
    if rate:
        line += f" ({rate:.2f} items/s)"
    if usage:
        line += (
            f" api: {usage['calls']} calls, {usage['retries']} retries, "
            f"{usage['prompt_tokens']}+{usage['completion_tokens']} tokens, ${usage['cost_usd']:.4f}"
        )
    return line


def is_up_to_date(out_dir: Path, config: dict[str, Any], n_items: int) -> bool:
    if not (out_dir / SUMMARY_FILE).exists():
        return False
    summary = read_json(out_dir / SUMMARY_FILE)
    return summary.get("n") == n_items and identity(summary) == identity(config)


def _answered(items_path: Path, items: Sequence[dict[str, Any]], data: Path) -> dict[str, dict[str, Any]]:
    """The records already in ``items.jsonl`` (a torn last line dropped); foreign ids are an error."""
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
    return done


def _record(backend: Backend, item: dict[str, Any], prompt: str, samples: list[Any], sampled: bool) -> dict:
    """The ``items.jsonl`` record of one item (the first sample's output, and all samples for pass@k)."""
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
        record["sample_correct"] = [score(sample.text, item["answer"])["correct"] for sample in samples]
        record["sample_output_tokens"] = [sample.output_tokens for sample in samples]
    return record


def evaluate_dataset(
    backend: Backend, data: Path, out_dir: Path, settings: EvalSettings, config: dict[str, Any]
) -> dict[str, Any]:
    """Answer every item not yet in ``out_dir/items.jsonl``, then write and return the summary.

    The folder is locked for the duration; its ``config.json`` is written (or checked) before any item.
    """
    with eval_lock(out_dir), naming(out_dir):  # a write failing on a full disk names the folder
        claim_folder(out_dir, config)
        return _answer_and_summarize(backend, data, out_dir, settings, config)


def _answer_and_summarize(
    backend: Backend, data: Path, out_dir: Path, settings: EvalSettings, config: dict[str, Any]
) -> dict[str, Any]:
    items = load_items(data)
    items_path = out_dir / ITEMS_FILE
    done = _answered(items_path, items, data)
    todo = [item for item in items if item["id"] not in done]
    sampled = settings.sampling is not None
    started, generated = time.perf_counter(), 0
    unanswered: list[str] = []
    with (
        items_path.open("a", encoding="utf-8") as handle,
        tqdm(total=len(items), initial=len(done), desc=f"eval {out_dir.name}", unit="item") as progress,
    ):
        for start in range(0, len(todo), settings.batch):
            batch = todo[start : start + settings.batch]
            prompts = [build_prompt(item["question"], item["options"]) for item in batch]
            requests = [Request(p, item["image"]) for p, item in zip(prompts, batch, strict=True)]
            generations = backend.generate_samples(requests) if sampled else backend.generate(requests)
            for item, prompt, generation in zip(batch, prompts, generations, strict=True):
                if generation is None:  # an API item without a reply: left for the rerun
                    unanswered.append(item["id"])
                    continue
                samples = generation if isinstance(generation, list) else [generation]
                done[item["id"]] = _record(backend, item, prompt, samples, sampled)
                handle.write(json.dumps(done[item["id"]], ensure_ascii=False) + "\n")
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
        counts = [sum(done[item["id"]]["sample_correct"]) for item in items]
        summary["pass_at_k"] = passk.estimate(counts, settings.samples)
    write_json(out_dir / SUMMARY_FILE, summary)
    return summary
