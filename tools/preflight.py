"""``pathvlm preflight`` (``make preflight``): the cluster path proven in minutes, before a GPU-day is spent.

Every check is the command a user runs, in a throw-away folder (``--dir``, default ``preflight/``, emptied
first): the runs root is ``PATHVLM_RUNS=<dir>/runs`` and the data ``PATHVLM_DATA=<dir>/data``, so nothing
of the real runs is touched. The checks, in order (each one's output in ``<dir>/logs/<check>.log``):

- ``host``: ``tools/gpu_host_check.py`` (Python 3.11 and the glibc the gpu wheels need; GPU profiles only);
- ``models``: the size's base model is in ``$HF_HOME`` (compute nodes run offline); the cpu profile's tiny
  model is built here (``pathvlm tiny-model --out <base_model>``) when it is missing;
- ``wandb``: ``WANDB_MODE`` and whether ``WANDB_API_KEY`` is set (online without a key fails);
- ``data``: a small synthetic PathMMU in the real schema (``pathvlm data synth`` + ``pathvlm data pathmmu``:
  16 sft, 8 rl, 8 test items);
- ``judge``: ``pathvlm judge check r1``, one real call to r1's judge (the cpu profile first starts the fake
  judge, ``pathvlm judge-server``; a served local judge is the one ``PATHVLM_JUDGE_BASE_URL`` names);
- ``sft``: ``pathvlm run alpha`` for 2 optimizer steps with the profile's settings (DeepSpeed on GPU), a save
  and the export;
- ``grpo``: ``pathvlm run r1`` for 2 steps from alpha's model (standing in for beta), the real rollout and
  reward (the judge), stopped by SIGUSR1 (SLURM's warning) after its first checkpoint, then the same command
  resumes from that checkpoint, finishes, merges and exports;
- ``eval``: ``pathvlm eval`` of r1's model on the 8 test items with the profile's backend (vLLM on GPU).

It prints a table (check, result, seconds, log to read) and exits 1 when a check failed; a check that needs a
failed one is skipped. ``--dry-run`` prints the checks' commands and runs nothing (``make -n preflight``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tools.common import paths
from tools.common.wandb_naming import child_environ
from tools.recipe import registry
from tools.recipe.cli import with_profile_size
from tools.recipe.compose import DEFAULT_PROFILE, DEFAULT_SIZE, compose, to_container
from tools.recipe.run import Run
from tools.train.models import ModelNotCachedError, require_cached

MARKER = ".pathvlm-preflight"  # a --dir holding it may be emptied; any other non-empty folder is refused
SYNTH_ITEMS, SPLIT_SIZES = 32, "16,8"  # sft, rl; the 8 left are the test items
SFT_SETS = ["llamafactory.max_steps=2", "llamafactory.save_steps=2"]
GRPO_SETS = ["easyr1.trainer.max_steps=2", "easyr1.trainer.save_freq=1"]
CPU_EVAL_TOKENS = 64  # the smoke's: an untrained tiny model's 1,024 tokens take minutes


@dataclass
class Result:
    check: str
    result: str
    seconds: float
    log: Path | None


@dataclass
class Preflight:
    """The checks of one size and profile in ``root``; ``env`` is what every command runs with."""

    size: str
    profile: str
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)

    @property
    def gpu(self) -> bool:
        return registry.profile(self.profile).grpo_engine != "trl"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def stage_args(self, stage: str, sets: list[str]) -> list[str]:
        return ["run", stage, "--size", self.size, "--profile", self.profile, "--set", *sets]

    def commands(self) -> dict[str, list[list[str]]]:
        """The ``pathvlm`` arguments of each check that runs commands (what --dry-run prints)."""
        source = self.root / "source" / "pathmmu"
        backend = registry.profile(self.profile).eval_backend
        evaluate = ["eval", "--backend", backend, "--size", self.size]
        evaluate += ["--model", str(self.runs / self.size / "r1" / "model")]
        evaluate += ["--data", str(self.data / "pathmmu" / "eval" / "test.jsonl")]
        if not self.gpu:
            evaluate += ["--max-new-tokens", str(CPU_EVAL_TOKENS)]
        return {
            "data": [
                ["data", "synth", "--out", str(source), "--items", str(SYNTH_ITEMS)],
                ["data", "pathmmu", "--root", str(source), "--out", str(self.data / "pathmmu")]
                + ["--sizes", SPLIT_SIZES],
            ],
            "judge": [["judge", "check", "r1", "--size", self.size, "--profile", self.profile]],
            "sft": [self.stage_args("alpha", SFT_SETS)],
            "grpo": [self.stage_args("r1", GRPO_SETS)],  # twice: stopped by SIGUSR1, then resumed
            "eval": [evaluate],
        }


def pathvlm(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tools.cli", *args]


def _log(pre: Preflight, check: str) -> Path:
    return pre.root / "logs" / f"{check}.log"


def _start(pre: Preflight, check: str, args: list[str], note: str = "") -> subprocess.Popen[bytes]:
    """Start ``pathvlm args`` with its output appended to the check's log."""
    with _log(pre, check).open("a", encoding="utf-8") as out:
        out.write(f"$ pathvlm {shlex.join(args)}{note}\n")
        out.flush()
        return subprocess.Popen(pathvlm(args), env=pre.env, stdout=out, stderr=subprocess.STDOUT)


def _run(pre: Preflight, check: str, args: list[str]) -> int:
    """Run ``pathvlm args`` with its output appended to the check's log; its exit code."""
    return _start(pre, check, args).wait()


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


# ---------------------------------------------------------------------------------------------- checks


def check_host(pre: Preflight) -> str:
    if not pre.gpu:
        return "skip: cpu profile (no gpu environment)"
    script = paths.REPO_ROOT / "tools" / "gpu_host_check.py"
    with _log(pre, "host").open("a", encoding="utf-8") as out:
        code = subprocess.run([sys.executable, str(script)], stdout=out, stderr=subprocess.STDOUT).returncode
    return "ok" if code == 0 else f"FAIL: {_last_line(_log(pre, 'host'))}"


def check_models(pre: Preflight) -> str:
    base = to_container(compose("alpha", pre.size, pre.profile))["base_model"]
    if Path(base).exists():
        return f"ok: {base}"
    if registry.profile(pre.profile).stand_in_size is not None:  # the tiny model: built offline, here
        if _run(pre, "models", ["tiny-model", "--out", base]) != 0:
            return f"FAIL: pathvlm tiny-model --out {base}: {_last_line(_log(pre, 'models'))}"
        return f"ok: {base} built (pathvlm tiny-model)"
    try:
        require_cached(base, pre.size)
    except ModelNotCachedError as error:
        return f"FAIL: {str(error).splitlines()[0]} (make models SIZE={pre.size})"
    return f"ok: {base} in the Hugging Face cache"


def check_wandb(pre: Preflight) -> str:
    mode = os.environ.get("WANDB_MODE", "online (unset)")
    key = "set" if os.environ.get("WANDB_API_KEY") else "unset"
    if mode.startswith("online") and key == "unset":
        return f"FAIL: WANDB_MODE {mode} and WANDB_API_KEY unset: export WANDB_API_KEY or WANDB_MODE=offline"
    return f"ok: WANDB_MODE {mode}, WANDB_API_KEY {key}"


def run_commands(pre: Preflight, check: str) -> str:
    """Run the check's commands (``Preflight.commands``) until one fails."""
    for args in pre.commands()[check]:
        if _run(pre, check, args) != 0:
            return f"FAIL: {_last_line(_log(pre, check))}"
    return "ok: " + _last_line(_log(pre, check)) if check == "judge" else "ok"


def check_sft(pre: Preflight) -> str:
    outcome = run_commands(pre, "sft")
    alpha = Run(pre.runs, pre.size, "alpha")
    if outcome == "ok":  # alpha's export stands in for beta, r1's parent
        beta = Run(pre.runs, pre.size, "beta")
        beta.dir.mkdir(parents=True, exist_ok=True)
        beta.model.symlink_to(alpha.model, target_is_directory=True)
        shutil.copyfile(alpha.done, beta.done)
        outcome = "ok: 2 steps, saved, exported" + (" (DeepSpeed)" if pre.gpu else "")
    return outcome


def check_grpo(pre: Preflight) -> str:
    """r1 for 2 steps, stopped by SIGUSR1 after its first checkpoint, then resumed to the end and merged."""
    (args,) = pre.commands()["grpo"]
    r1, log = Run(pre.runs, pre.size, "r1"), _log(pre, "grpo")
    runner = _start(pre, "grpo", args, note="  # stopped by SIGUSR1 once the engine runs")
    while runner.poll() is None and not _engine_started(log):
        time.sleep(0.5)
    if runner.poll() is None:
        runner.send_signal(signal.SIGUSR1)  # the runner's handlers are installed once the engine prints
    runner.wait()
    checkpoints = sorted({*r1.checkpoints.glob("checkpoint-*"), *r1.checkpoints.glob("global_step_*")})
    if r1.done.exists() or not checkpoints:
        return f"FAIL: SIGUSR1 left no checkpoint to resume from: {_last_line(log)}"
    if _run(pre, "grpo", args) != 0:
        return f"FAIL: {_last_line(log)}"
    if "resuming from" not in log.read_text(encoding="utf-8", errors="replace"):
        return "FAIL: the second run did not resume from the checkpoint"
    return f"ok: stopped at {checkpoints[0].name}, resumed, finished, merged"


def _engine_started(log: Path) -> bool:
    """The engine has printed a line after the runner's ``$ <engine command>`` line."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    starts = [
        i for i, line in enumerate(lines) if line.startswith("$ ") and not line.startswith("$ pathvlm ")
    ]
    return bool(starts) and len(lines) > starts[-1] + 1


def check_eval(pre: Preflight) -> str:
    outcome = run_commands(pre, "eval")
    if outcome != "ok":
        return outcome
    summary = json.loads((pre.runs / pre.size / "r1" / "eval" / "test" / "summary.json").read_text())
    return f"ok: {summary['n']} items, {summary['items_per_second']:.2f} items/s"


CHECKS: dict[str, tuple[Callable[[Preflight], str], tuple[str, ...]]] = {
    # check -> (function, checks it needs)
    "host": (check_host, ()),
    "models": (check_models, ()),
    "wandb": (check_wandb, ()),
    "data": (functools.partial(run_commands, check="data"), ()),
    "judge": (functools.partial(run_commands, check="judge"), ()),
    "sft": (check_sft, ("models", "data")),
    "grpo": (check_grpo, ("sft", "judge")),
    "eval": (check_eval, ("grpo",)),
}


# ---------------------------------------------------------------------------------------------- run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def fake_judge(pre: Preflight) -> Iterator[None]:
    """The cpu profile's judge (``pathvlm judge-server``) on a free port, for the run; else nothing."""
    if pre.gpu:
        yield
        return
    port = _free_port()
    pre.env["PATHVLM_JUDGE_PORT"] = str(port)
    server = _start(pre, "judge-server", ["judge-server", "--port", str(port)])
    try:
        deadline = time.monotonic() + 60
        while server.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def prepare(root: Path) -> None:
    """Empty ``root`` (a folder an earlier preflight made, or a new one) and mark it as a preflight folder."""
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise SystemExit(f"error: {root} is not empty and not a preflight folder: pass another --dir")
        shutil.rmtree(root)
    (root / "logs").mkdir(parents=True)
    (root / MARKER).write_text("a throw-away folder of `pathvlm preflight`\n", encoding="utf-8")


def environment(root: Path) -> dict[str, str]:
    return {
        **child_environ(os.environ),
        paths.RUNS_ENV: str(root / "runs"),
        paths.DATA_ENV: str(root / "data"),
        "PATHVLM_JUDGE_CACHE": str(root / "judge-cache"),
        "WANDB_DIR": str(root),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "TRANSFORMERS_OFFLINE": os.environ.get("TRANSFORMERS_OFFLINE", "1"),
    }


def run(pre: Preflight) -> int:
    prepare(pre.root)
    with fake_judge(pre):
        for check, (function, needs) in CHECKS.items():
            failed = [r.check for r in pre.results if r.check in needs and not r.result.startswith("ok")]
            start = time.monotonic()
            print(f"[preflight] {check} ...", flush=True)
            if failed:
                result = f"skip: needs {', '.join(failed)}"
            else:
                try:
                    result = function(pre)
                except Exception as error:  # a check's own bug must still leave the table
                    result = f"FAIL: {type(error).__name__}: {error}"
            log = _log(pre, check)
            pre.results.append(Result(check, result, time.monotonic() - start, log if log.exists() else None))
    print_table(pre.results)
    return 1 if any(r.result.startswith("FAIL") for r in pre.results) else 0


def print_table(results: list[Result]) -> None:
    print(f"\n{'check':<7} {'result':<60} {'seconds':>7}  log")
    for r in results:
        print(f"{r.check:<7} {r.result:<60} {r.seconds:7.1f}  {r.log or '-'}")


def dry_run(pre: Preflight) -> None:
    """The checks and the commands they run (``make -n preflight``)."""
    env = {k: pre.env[k] for k in (paths.RUNS_ENV, paths.DATA_ENV, "PATHVLM_JUDGE_CACHE", "WANDB_DIR")}
    print("# pathvlm preflight: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()))
    alpha = to_container(compose("alpha", pre.size, pre.profile))
    engine = "EasyR1 (Ray, FSDP, vLLM rollout)" if pre.gpu else "TRL's GRPOTrainer (cpu engine)"
    notes = {
        "host": "python tools/gpu_host_check.py" if pre.gpu else "skipped (cpu profile)",
        "models": f"pathvlm tiny-model --out {alpha['base_model']} (when missing)"
        if registry.profile(pre.profile).stand_in_size is not None
        else f"{alpha['base_model']} in $HF_HOME (compute nodes are offline)",
        "wandb": "WANDB_MODE and whether WANDB_API_KEY is set",
        "sft": f"LLaMA-Factory, DeepSpeed {alpha['llamafactory'].get('deepspeed')}, a save, the export",
        "grpo": f"{engine}: stopped by SIGUSR1 after its first checkpoint, then resumed, merged",
    }
    commands = pre.commands()
    for check in CHECKS:
        for args in commands.get(check, []):
            print(f"# {check}: pathvlm {shlex.join(args)}")
        if check in notes:
            print(f"# {check}: {notes[check]}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="prove the cluster path in minutes: host, models, W&B, judge, SFT, GRPO + resume, eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--size",
        choices=registry.sizes(),
        help=f"model size (default: the profile's stand-in size, cpu: tiny; else {DEFAULT_SIZE})",
    )
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=registry.profiles(), help="hardware")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("preflight"),
        help="throw-away folder, emptied first (default: preflight)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the checks' commands, run nothing")
    parser.set_defaults(func=with_profile_size(main))


def main(args: argparse.Namespace) -> int:
    root = args.dir.resolve()
    pre = Preflight(args.size, args.profile, root, environment(root))
    if args.dry_run:
        dry_run(pre)
        return 0
    return run(pre)
