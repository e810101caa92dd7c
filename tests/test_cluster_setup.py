"""Setting up on a cluster, without one: `make setup-gpu`'s order and host check, `make models`, and the
runner's error for a base model missing from the offline cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.cli import main as cli_main
from tools.gpu_host_check import problems

REPO = Path(__file__).resolve().parents[1]


def _make_n(*args: str) -> list[str]:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def _index(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


def test_setup_gpu_checks_the_host_then_installs_flash_attns_build_prerequisites_first() -> None:
    lines = _make_n("setup-gpu")
    order = [
        "tools/gpu_host_check.py",
        "-m venv .venv-gpu",
        "install -e '.[gpu-prereq]'",
        "install -e '.[gpu]'",
        "install --no-build-isolation -e '.[gpu-build]'",
        "git clone",
        "--no-deps -e .cache/EasyR1",
    ]
    assert [_index(lines, step) for step in order] == sorted(_index(lines, step) for step in order)
    wheel = "flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl"
    lines = _make_n("setup-gpu", f"FLASH_ATTN_WHEEL=/wheels/{wheel}")
    assert any(line.endswith(f"install --no-build-isolation '/wheels/{wheel}'") for line in lines)


def test_gpu_prerequisites_are_what_flash_attns_setup_imports() -> None:
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {spec.split("=")[0].split(">")[0] for spec in extras["gpu-prereq"]}
    assert {"wheel", "packaging"} <= names and any(s.startswith("torch==") for s in extras["gpu"])


HEADER = Path("/usr/include/python3.11/Python.h")


@pytest.mark.parametrize(
    ("python", "libc", "compiler", "header", "expected"),
    [
        ((3, 11), ("glibc", "2.35"), "/usr/bin/gcc", HEADER, []),
        ((3, 12), ("glibc", "2.35"), "/usr/bin/gcc", HEADER, ["Python 3.12"]),
        ((3, 11), ("glibc", "2.31"), "/usr/bin/gcc", HEADER, ["glibc >= 2.32"]),
        ((3, 10), ("", ""), "/usr/bin/gcc", HEADER, ["Python 3.10", "glibc >= 2.32"]),
        ((3, 11), ("glibc", "2.35"), None, HEADER, ["no C compiler"]),  # Triton builds kernels at run time
        ((3, 11), ("glibc", "2.35"), "/usr/bin/gcc", None, ["no Python.h for Python 3.11"]),
    ],
)
def test_host_check_names_python_glibc_compiler_and_headers(
    python: tuple[int, int],
    libc: tuple[str, str],
    compiler: str | None,
    header: Path | None,
    expected: list[str],
) -> None:
    found = problems(python, libc, compiler, header)
    assert len(found) == len(expected) and all(e in f for e, f in zip(expected, found, strict=True))


def test_host_check_finds_this_hosts_compiler_and_headers(tmp_path: Path) -> None:
    """The script itself, with no compiler on PATH and none in CC: exit 2 naming it."""
    script = REPO / "tools" / "gpu_host_check.py"
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert result.returncode == 2 and "error: no C compiler (gcc, clang or $CC)" in result.stderr


def test_make_models_downloads_the_sizes_base_model_online(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _make_n("models", "SIZE=3b")
    assert lines[-1].startswith("HF_HUB_OFFLINE=0 ") and lines[-1].endswith("pathvlm models --size 3b")


@pytest.mark.parametrize(
    ("judge_env", "expected"),
    [
        ({}, ["Qwen/Qwen2.5-VL-3B-Instruct"]),  # GPT-4o: nothing to download for the judge
        (
            {
                "PATHVLM_JUDGE_BASE_URL": "http://judge:8000/v1",
                "PATHVLM_JUDGE_MODEL": "Qwen/Qwen2.5-VL-72B-Instruct",
            },
            ["Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-72B-Instruct"],
        ),
    ],
)
def test_models_dry_run_lists_base_and_self_hosted_judge(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], judge_env: dict, expected: list[str]
) -> None:
    for name in ("PATHVLM_JUDGE_BASE_URL", "PATHVLM_JUDGE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in judge_env.items():
        monkeypatch.setenv(name, value)
    assert cli_main(["models", "--size", "3b", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines] == expected
    assert all(" download " in line for line in lines)


def test_missing_base_model_names_make_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """delta starts from the hub base model; offline with an empty cache the runner stops before training."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("PATHVLM_RUNS", str(tmp_path / "runs"))
    assert cli_main(["run", "delta", "--size", "3b", "--profile", "h20x4"]) == 2
    err = capsys.readouterr().err
    assert "base model Qwen/Qwen2.5-VL-3B-Instruct is not in the Hugging Face cache" in err
    assert "make models SIZE=3b" in err
    assert not (tmp_path / "runs").exists()
