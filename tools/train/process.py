"""Supervising an engine process: its log, SLURM's signals, and never outliving the runner.

``run_logged`` runs the engine, appends its output to the run's log and copies it to the console but for
INFO records (``QuietInfo``). While it runs, each signal in ``on_signal`` calls its ``StopHandler`` with the
process: SLURM's SIGUSR1 warning before the time limit asks the engine to checkpoint and stop
(``request_stop_file``: the stop file the Trainer callback ``engines.stop.StopAndSave`` looks for), SIGTERM
(preemption) is passed on (``forward_signal``). On Linux the engine gets SIGTERM when the runner dies
(``die_with_parent``), so it never trains on as an orphan.
"""

from __future__ import annotations

import ctypes
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from tools.common.errors import naming

StopHandler = Callable[["subprocess.Popen[str]", int], None]


def run_logged(
    command: list[str],
    env: Mapping[str, str],
    log_path: Path,
    on_signal: Mapping[int, StopHandler] | None = None,
) -> int:
    """Run ``command`` with ``env``, its output appended to ``log_path`` and shown (``QuietInfo``); return its
    exit code. A signal in ``on_signal`` (default: SIGTERM forwarded) calls its handler with the process; on
    Ctrl-C or an exception the engine is terminated."""
    handlers = {signal.SIGTERM: forward_signal} if on_signal is None else on_signal
    console = QuietInfo()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with naming(log_path), log_path.open("a", encoding="utf-8") as log:  # a full disk names the log
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        previous = {
            sig: signal.signal(sig, lambda signum, _, handler=handler: handler(process, signum))
            for sig, handler in handlers.items()
        }
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if console.shown(line):
                    print(line, end="", flush=True)
                log.write(line)
                log.flush()
            return process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class QuietInfo:
    """Which engine output lines reach the console: not an ``[INFO|…]`` / ``[DEBUG|…]`` record of
    LLaMA-Factory or transformers, nor the lines continuing it (indented, ``- …``, brackets, blank)."""

    _RECORD = re.compile(r"^\[(INFO|DEBUG|WARNING|ERROR|CRITICAL)\|")
    _CONTINUATION = re.compile(r"^(\s|- |[{}\[\]()],?$|$)")

    def __init__(self) -> None:
        self.hiding = False

    def shown(self, line: str) -> bool:
        record = self._RECORD.match(line)
        if record is not None:
            self.hiding = record.group(1) in ("INFO", "DEBUG")
        elif not self._CONTINUATION.match(line.rstrip("\n")):
            self.hiding = False
        return not self.hiding


def forward_signal(process: subprocess.Popen[str], signum: int) -> None:
    """Pass the signal on to the engine (one that handles it itself)."""
    process.send_signal(signum)


def request_stop_file(path: Path) -> StopHandler:
    """A handler that writes the stop file ``path`` for the engine to find (``engines.stop``)."""

    def handler(process: subprocess.Popen[str], signum: int) -> None:
        path.write_text(f"{signum}\n", encoding="utf-8")
        print(f"signal {signum}: asked the engine to checkpoint and stop ({path})", flush=True)

    return handler


def die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM) in the child, between fork and exec."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
