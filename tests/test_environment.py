"""The front door: Makefile targets, the `pathvlm` entry point, the pinned environments."""

from __future__ import annotations

import atexit
import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(REPO), *args], capture_output=True, text=True, check=False)


def _canonical(name: str) -> str:
    """PEP 503 project name: liger_kernel and liger-kernel are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(extra: str) -> dict[str, str]:
    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        extra
    ]
    return dict(re.match(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", r).groups() for r in requirements if "==" in r)


def test_make_help_lists_every_target_with_a_description() -> None:
    result = _make("help")
    assert result.returncode == 0
    listed = set(re.findall(r"^  ([a-z][\w-]*) +\S", result.stdout, flags=re.M))
    makefile = (REPO / "Makefile").read_text()
    declared = set(re.findall(r"^([a-z][\w-]*):(?!=)", makefile, flags=re.M))
    assert {"setup", "setup-gpu", "test", "lint"} <= listed
    assert declared == listed, f"targets without '## help': {declared - listed}"


def test_setup_is_idempotent() -> None:
    """After `make setup` (run by `make test`), a second setup has nothing to do."""
    assert (REPO / ".venv" / ".installed").exists()
    assert _make("-q", ".venv/.installed").returncode == 0


def test_pathvlm_help_lists_subcommands() -> None:
    from tools.cli import COMMANDS

    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert all(name in result.stdout for name in COMMANDS)


def test_each_command_line_in_help_is_its_modules_own() -> None:
    """`pathvlm --help` lists COMMANDS without importing the modules: their help lines stay the same."""
    import argparse
    import importlib

    from tools.cli import COMMANDS

    for name, (module, help_line) in COMMANDS.items():
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(subparsers)
        helps = {action.dest: action.help for action in subparsers._choices_actions}
        assert helps[name] == help_line, name


def test_pathvlm_help_imports_no_command_module() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from tools.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "heavy = ('tools.train', 'tools.evaluation', 'tools.data', 'aiohttp', 'omegaconf', 'numpy')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "[]"


def test_installed_versions_match_the_cpu_pins() -> None:
    from importlib.metadata import version

    for name in (
        "torch",
        "torchvision",
        "torchaudio",
        "transformers",
        "llamafactory",
        "trl",
        "peft",
        "datasets",
    ):
        assert version(name).split("+")[0] == _pins("cpu")[name], name


def test_cpu_and_gpu_share_the_library_pins() -> None:
    cpu, gpu = _pins("cpu"), _pins("gpu")
    for name in ("transformers", "llamafactory", "datasets", "accelerate", "peft", "trl", "tensordict"):
        assert cpu[name] == gpu[name], name


@functools.cache
def gpu_dry_run() -> tuple[subprocess.Popen, Path]:
    """`pip install --dry-run` of the gpu extra, started once; returns the process and its report path.

    It downloads gigabytes of wheels for minutes, so conftest.py starts it when the test below is collected
    and it runs beside the other tests (not niced: on a busy machine a niced pip starved for 25 minutes)."""
    folder = Path(tempfile.mkdtemp(prefix="gpu-dry-run-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    command += ["--disable-pip-version-check", "--report", str(folder / "report.json"), f"{REPO}[gpu]"]
    with (folder / "pip.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    atexit.register(process.kill)  # a session that ends before the test leaves no pip behind
    return process, folder


@pytest.mark.network
@pytest.mark.slow
def test_gpu_pins_resolve_together() -> None:
    """The cluster environment resolves as pinned (flash-attn builds from source: not part of the dry run)."""
    process, folder = gpu_dry_run()
    assert process.wait(timeout=1500) == 0, (folder / "pip.log").read_text()[-3000:]
    resolved = {
        _canonical(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads((folder / "report.json").read_text())["install"]
    }
    for name, pinned in _pins("gpu").items():
        assert resolved[_canonical(name.split("[")[0])] == pinned, name


test_gpu_pins_resolve_together.start_early = gpu_dry_run  # type: ignore[attr-defined]
