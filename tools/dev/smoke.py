"""``pathvlm smoke``: the whole paper pipeline on CPU in minutes, showing that the model learns.

data (synthetic, learnable, in the real PathMMU and OmniMedVQA schemas) → alpha → beta → r1 (against the fake
judge server on 127.0.0.1) → evaluation of base, alpha, beta and r1 on the in-domain test split and the four
OOD subsets → the judge's rubric on their test outputs (``judge-eval``) → the fake server evaluated as an API
model (``eval --backend openai``) → report. Every step is the same ``pathvlm`` command a cluster user runs;
the only differences are the tiny offline model, the synthetic data, the judge endpoint and ``--profile cpu``.
A finished step is skipped on the next run (stages by their DONE marker, evaluations by their summary, data
by its manifest). While a stage trains (one core), the base model and the finished stages are evaluated in the
background (the other); the evaluation step then only adds what is left.
Outputs live under ``--dir`` (default ``smoke/``): ``source/``, ``data/``, ``runs/``, ``reports/``,
``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.common import paths
from tools.common.wandb_naming import child_environ
from tools.recipe.run import Run
from tools.report.learning import build
from tools.report.load import load

SIZE = "tiny"  # recipes/sizes/tiny.yaml: the tiny offline model, runs under runs/tiny/
STAGES = ("alpha", "beta", "r1")
CHANCE = 0.25  # four options per synthetic item
API_MODEL = "fake-vlm"  # the fake server answering as an API model: runs/api/fake-vlm
ITEMS = 400  # synthetic PathMMU items (--items)
SPLIT_SIZES = (200, 100)  # sft, rl items; the test split is the rest (--sizes)


@dataclass(frozen=True)
class Step:
    name: str
    args: list[str]  # the `pathvlm` arguments
    done: Path | None  # exists once the step has finished; None: always run (cheap)


def plan(root: Path, items: int, ood_items: int, seed: int, sizes: str, port: int) -> list[Step]:
    """The steps; ``port``: the fake judge server's, which also stands in for an API model."""
    source, data, runs = root / "source", root / "data", root / "runs"
    tiny = ["--size", SIZE, "--profile", "cpu", "--runs", str(runs)]
    steps = [
        Step(
            "tiny model",
            ["tiny-model", "--out", str(root / "tiny-model")],
            root / "tiny-model" / "config.json",
        ),
        Step(
            "synthetic PathMMU",
            ["data", "synth", "--out", str(source / "pathmmu"), "--items", str(items), "--seed", str(seed)],
            source / "pathmmu" / "data.json",
        ),
        Step(
            "convert PathMMU",
            ["data", "pathmmu", "--root", str(source / "pathmmu"), "--out", str(data / "pathmmu")]
            + ["--sizes", sizes, "--seed", str(seed)],
            data / "pathmmu" / "manifest.json",
        ),
        Step(
            "synthetic OmniMedVQA",
            ["data", "synth", "--format", "omnimedvqa", "--out", str(source / "omnimedvqa")]
            + ["--items", str(ood_items), "--seed", str(seed)],
            source / "omnimedvqa" / "QA_information",
        ),
        Step(
            "convert OmniMedVQA",
            ["data", "omnimedvqa", "--root", str(source / "omnimedvqa"), "--out", str(data / "omnimedvqa")],
            data / "omnimedvqa" / "manifest.json",
        ),
    ]
    steps += [Step(stage, ["run", stage, *tiny], Run(runs, SIZE, stage).done) for stage in STAGES]
    steps += [
        Step(
            "evaluate",
            ["eval-all", *tiny, "--data-root", str(data), "--backend", "hf", "--max-new-tokens", "64"]
            + ["--batch-size", "32"],
            None,
        ),
        Step("judge the test outputs", ["judge-eval", *tiny], None),
        Step(
            "API model (the fake server)",
            ["eval", "--backend", "openai", "--model", API_MODEL, "--base-url", f"http://127.0.0.1:{port}/v1"]
            + ["--data", str(data / "pathmmu" / "eval" / "test.jsonl"), "--runs", str(runs)],
            None,
        ),
        Step("report", ["report", "--runs", str(runs), "--out", str(root / "reports")], None),
    ]
    return steps


@contextmanager
def judge_server(env: dict[str, str]) -> Iterator[None]:
    """The fake OpenAI-compatible judge on a free port (``PATHVLM_JUDGE_PORT``), started for the run and
    stopped after it, whatever happens."""
    server = subprocess.Popen(
        pathvlm_command(["judge-server", "--port", "0"]), env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        listening = server.stdout.readline() if server.stdout else ""  # "judge-server listening on URL"
        if "listening on" not in listening:
            raise RuntimeError("the fake judge server did not start")
        url = listening.split()[-1]
        env["PATHVLM_JUDGE_PORT"] = url.rsplit(":", 1)[1].split("/")[0]
        print(f"[smoke] fake judge server on {url}", flush=True)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


def pathvlm_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tools.cli", *args]


class BackgroundEvaluation:
    """The evaluation step (``eval-all``: the base model and every finished stage not yet evaluated) run in
    the background while a stage trains, one at a time, its output in ``logs/evaluate-during-<stage>.log``;
    a failure stops the smoke, naming its log. As a context manager it leaves none running."""

    def __init__(self, step: Step, root: Path, env: dict[str, str]) -> None:
        self.step, self.root, self.env = step, root, env
        self.running: tuple[subprocess.Popen, Path] | None = None

    def start(self, during: str) -> None:
        self.wait()
        log = self.root / "logs" / f"evaluate-during-{during}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(
            f"[smoke] evaluating in the background while {during} trains: pathvlm {' '.join(self.step.args)} "
            f"(log: {log})",
            flush=True,
        )
        with log.open("w") as out:
            process = subprocess.Popen(
                pathvlm_command(self.step.args), env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.running = (process, log)

    def wait(self) -> None:
        if self.running is None:
            return
        (process, log), self.running = self.running, None
        if process.wait() != 0:
            raise RuntimeError(f"the background evaluation failed (exit {process.returncode}): see {log}")

    def __enter__(self) -> BackgroundEvaluation:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running is not None:
            process, _ = self.running
            process.terminate()
            process.wait(timeout=30)


def learning_figures(root: Path) -> dict[str, Any]:
    """The figures that show each stage's job (``tools.report.learning``'s table, as JSON): per
    stage the strict test accuracy with its CI, the judged process score, the reward trends during beta and
    r1, the McNemar test against the stage before; and the OOD accuracy per stage and subset."""
    runs = root / "runs"
    results = load(runs)
    stages = {row.pop("stage"): row for row in build(results).get(SIZE, [])}
    ood = {
        stage: {
            d: r.summary["accuracy"]
            for (size, st, d), r in sorted(results.items())
            if st == stage and d != "test"
        }
        for stage in ("base", *STAGES)
        if any(size == SIZE and st == stage for size, st, _ in results)
    }
    return {"chance": CHANCE, "stages": stages, "ood_accuracy": ood}


def run(root: Path, items: int, ood_items: int, seed: int, sizes: str) -> dict[str, Any]:
    root = root.resolve()
    env = {
        **child_environ(os.environ),
        paths.DATA_ENV: str(root / "data"),
        paths.RUNS_ENV: str(root / "runs"),
        "PATHVLM_TINY_MODEL": str(root / "tiny-model"),
        "PATHVLM_JUDGE_CACHE": str(root / "judge-cache"),
        "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
        # one torch thread per process: on 2 shared cores a second thread mostly waits (measured 40x slower)
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "WANDB_DIR": str(root),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    timings: dict[str, float] = {}
    started = time.monotonic()
    with judge_server(env):
        steps = plan(root, items, ood_items, seed, sizes, int(env["PATHVLM_JUDGE_PORT"]))
        evaluation = next(step for step in steps if step.name == "evaluate")
        with BackgroundEvaluation(evaluation, root, env) as background:
            for number, step in enumerate(steps, 1):
                header = f"[smoke] step {number}/{len(steps)}: {step.name}"
                t0 = time.monotonic()
                if step is evaluation:
                    background.wait()  # the one in flight: its time counts here
                if step.done is not None and step.done.exists():
                    print(f"{header}: already done, skipped", flush=True)
                    timings[step.name] = 0.0
                else:
                    print(f"{header}: pathvlm {' '.join(step.args)}", flush=True)
                    subprocess.run(pathvlm_command(step.args), env=env, check=True)
                    timings[step.name] = round(time.monotonic() - t0, 1)
                    print(f"{header}: done in {timings[step.name]:.0f} s", flush=True)
                # the next stage trains on one core while the finished ones (and the base model) are
                # evaluated on the other
                following = steps[number] if number < len(steps) else None
                if following is not None and following.name in STAGES and not following.done.exists():
                    background.start(during=following.name)
    total = round(time.monotonic() - started, 1)
    result = {
        "timings_s": timings,
        "total_s": total,
        "load_average": os.getloadavg(),
        **learning_figures(root),
    }
    (root / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    _print_result(root, result)
    return result


def _print_result(root: Path, result: dict[str, Any]) -> None:
    print("\n[smoke] time per step:")
    for name, seconds in result["timings_s"].items():
        print(f"  {name:<22} {seconds:7.1f} s")
    print(f"  {'total':<22} {result['total_s']:7.1f} s")
    print(
        f"\n[smoke] what each stage did (strict test accuracy, chance {CHANCE:.2f}; process: judged on test):"
    )
    for stage, row in result["stages"].items():
        low, high = row["accuracy_ci"]
        line = f"  {stage:<6} accuracy {row['accuracy']:.3f} ({low:.3f}-{high:.3f})"
        if "process" in row:
            line += f"  process {row['process']:.3f}"
        if "mcnemar" in row:
            test = row["mcnemar"]
            line += f"  vs {row['vs']}: +{test['only_this']}/-{test['only_previous']} p={test['p']:.2g}"
        print(line)
        for name in ("format", "accuracy", "process"):
            if row.get(f"reward_{name}"):
                first, last = row[f"reward_{name}"]
                print(
                    f"         reward/{name} in training: {first:.3f} -> {last:.3f} (first -> last quarter)"
                )
    print("\n[smoke] OOD accuracy:")
    for stage, subsets in result["ood_accuracy"].items():
        print(f"  {stage:<6} " + "  ".join(f"{name} {value:.2f}" for name, value in subsets.items()))
    reports = root / "reports"
    print(f"\n[smoke] tables: {reports / 'report.md'} (+ CSVs); plots: {reports}/*.png")
    print(f"[smoke] figures: {root / 'summary.json'}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="the whole pipeline on CPU: tiny model, synthetic data, fake judge (make smoke)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", type=Path, default=Path("smoke"), help="output directory (default: smoke)")
    sizes = ",".join(map(str, SPLIT_SIZES))
    parser.add_argument(
        "--items", type=int, default=ITEMS, help=f"synthetic PathMMU items (default: {ITEMS})"
    )
    parser.add_argument(
        "--sizes", default=sizes, help=f"sft,rl split sizes; test is the rest (default: {sizes})"
    )
    parser.add_argument(
        "--ood-items", type=int, default=12, help="synthetic items per OOD subset (default: 12)"
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    run(args.dir, args.items, args.ood_items, args.seed, args.sizes)
    return 0
