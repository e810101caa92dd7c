"""Setting up on a cluster, without one: `make setup-gpu`'s order and host check, `make models`, and the
runner's error for a base model missing from the offline cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.cli import main as cli_main
from tools.gpu_host_check import problems
from tools.train.models import LOCAL_JUDGE_MODEL

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


def test_make_models_fetches_the_local_judge_whenever_the_pipeline_serves_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """LOCAL_JUDGE=1: `make pipeline` serves r1's judge (slurm/judge.sbatch) and `make models` fetches it."""
    assert _make_n("models", "SIZE=3b", "LOCAL_JUDGE=1")[-1].endswith(
        "pathvlm models --size 3b --local-judge"
    )
    assert "slurm/pipeline.sh  --local-judge --" in _make_n("pipeline", "LOCAL_JUDGE=1")[-1]
    assert "--local-judge" not in _make_n("pipeline")[-1]
    for name in ("PATHVLM_JUDGE_BASE_URL", "PATHVLM_JUDGE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert cli_main(["models", "--size", "3b", "--local-judge", "--dry-run"]) == 0
    models = [line.rsplit(" ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert models == ["Qwen/Qwen2.5-VL-3B-Instruct", LOCAL_JUDGE_MODEL]
    monkeypatch.setenv("PATHVLM_JUDGE_MODEL", "Qwen/Qwen2.5-VL-7B-Instruct")  # what judge.sbatch would serve
    assert cli_main(["models", "--size", "3b", "--local-judge", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" Qwen/Qwen2.5-VL-7B-Instruct")


def test_the_default_local_judge_loads_at_tensor_parallel_4() -> None:
    """Not Qwen2.5-VL-72B-Instruct-AWQ: 29,568 / 4 = 7,392 is no multiple of the AWQ/Marlin 128 (vLLM
    issue 13640). The default's MLP and heads split whole at TP 4 (its sizes: tools/train/models.py)."""
    assert "72B" not in LOCAL_JUDGE_MODEL and "AWQ" not in LOCAL_JUDGE_MODEL
    assert LOCAL_JUDGE_MODEL == "Qwen/Qwen2.5-VL-32B-Instruct"
    mlp, heads, kv_heads, vision_heads, vision_mlp = 27_648, 40, 8, 16, 3_420
    assert (mlp // 4) % 128 == 0 and mlp % 4 == 0
    assert heads % 4 == kv_heads % 4 == vision_heads % 4 == vision_mlp % 4 == 0
    assert (29_568 // 4) % 128 != 0  # the old default


def test_setup_judge_installs_a_fixed_vllm_in_its_own_environment() -> None:
    """vLLM 0.11's OpenAI server has a remote-code-execution advisory fixed in 0.14.1: the served judge gets
    its own environment with the `judge` extra, separate from the gpu one (EasyR1's vLLM 0.11.0)."""
    import tomllib

    from packaging.version import Version

    lines = _make_n("setup-judge")
    assert lines == ["test -x .venv-judge/bin/python || python3 -m venv .venv-judge",
                     ".venv-judge/bin/pip install '.[judge]'"]  # fmt: skip
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (vllm,) = [spec for spec in extras["judge"] if spec.startswith("vllm")]
    assert Version(vllm.split("==")[1]) >= Version("0.14.1")
    assert "vllm==0.11.0" in extras["gpu"]  # unchanged: EasyR1's rollout engine
