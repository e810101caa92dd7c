"""Adversarial pass over the CLI: hostile flags, files and faults (read-only, full disk, torn or non-UTF-8
files, missing folders, Ctrl-C) each end in exit code 2 (130 for Ctrl-C) and one line naming the file or
flag, never a traceback."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_eval import ScriptedBackend, run_eval, write_eval_file
from test_report import write_eval

from tools.cli import main
from tools.common.errors import naming
from tools.recipe.run import Run
from tools.train.engines.llamafactory import LlamaFactory

REPO = Path(__file__).resolve().parents[1]
ANSWER = "<think>a</think><answer>A) Adenocarcinoma</answer>"


def cli(argv: list[str]) -> int:
    """``pathvlm ARGV``'s exit code, in process."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def one_error_line(capsys: pytest.CaptureFixture[str], *names: str) -> str:
    """The one ``error:`` message on stderr (a list of problems continues on indented lines), which names
    each of ``names``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    starts = [i for i, line in enumerate(err.splitlines()) if line.startswith("error:")]
    assert len(starts) == 1, err
    message = "\n".join(err.splitlines()[starts[0] :])
    assert all(name in message for name in names), (names, message)
    return message


def fail_under(monkeypatch: pytest.MonkeyPatch, method: str, root: Path, code: int, filename: bool) -> None:
    """``Path.<method>`` raises ``OSError(code)`` for paths under ``root`` (with or without the file name,
    as the kernel reports a refused mkdir or a failed write)."""
    original = getattr(Path, method)

    def failing(self: Path, *args, **kwargs):
        if self.is_relative_to(root):
            raise OSError(code, os.strerror(code), *([str(self)] if filename else []))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, failing)


# ---------------------------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def pathmmu_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.dev.synth import write_synthetic_pathmmu

    return write_synthetic_pathmmu(tmp_path_factory.mktemp("src"), 24)


@pytest.mark.parametrize(
    ("method", "code", "filename", "advice"),
    [
        ("mkdir", errno.EROFS, True, "read-only file system"),
        ("mkdir", errno.EACCES, True, "permission denied"),
        ("write_text", errno.ENOSPC, False, "the disk is full"),
    ],
)
def test_data_into_a_read_only_or_full_out(
    pathmmu_source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    method: str,
    code: int,
    filename: bool,
    advice: str,
) -> None:
    out = tmp_path / "ro" / "pathmmu"
    fail_under(monkeypatch, method, tmp_path / "ro", code, filename)
    command = ["data", "pathmmu", "--root", str(pathmmu_source), "--out", str(out), "--sizes", "8,8"]
    assert cli(command) == 2
    one_error_line(capsys, str(tmp_path / "ro"), advice)  # --out itself, or its folder that refused
    assert not out.exists()


def test_data_pathmmu_with_a_non_utf8_data_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data.json").write_bytes(b'{"PubMed": \xff}')
    (tmp_path / "images").mkdir()
    assert cli(["data", "pathmmu", "--root", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, "data.json")


def test_data_check_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["data", "check", str(tmp_path / "typo")]) == 2
    one_error_line(capsys, "typo")


def test_naming_gives_a_nameless_write_error_its_file(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info, naming(tmp_path / "log"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.filename == str(tmp_path / "log") and info.value.errno == errno.ENOSPC


# ---------------------------------------------------------------------------------------------- eval


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    backend = ScriptedBackend({"Which": ANSWER})
    monkeypatch.setattr("tools.evaluation.evaluate.make_backend", lambda *a, **k: backend)
    return backend


def eval_argv(data: Path, out: Path) -> list[str]:
    return ["eval", "--model", "scripted", "--data", str(data), "--out", str(out)]


def _finished_eval(tmp_path: Path) -> tuple[Path, Path]:
    data = write_eval_file(tmp_path / "test.jsonl", 3)
    assert run_eval("scripted", data, tmp_path / "out") == 0
    return data, tmp_path / "out" / "test"


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("items.jsonl", b"\xff\xfe\n"),
        ("summary.json", b"{torn"),
        ("summary.json", b"\xff"),
        ("summary.json", b"[]"),
        ("config.json", b"{torn"),
    ],
)
def test_eval_over_damaged_folder_files(
    tmp_path: Path, scripted, capsys: pytest.CaptureFixture[str], file: str, content: bytes
) -> None:
    data, folder = _finished_eval(tmp_path)
    if file != "summary.json":
        (folder / "summary.json").unlink()  # interrupted: the next run resumes from items.jsonl
    (folder / file).write_bytes(content)
    capsys.readouterr()
    assert cli(eval_argv(data, tmp_path / "out")) == 2
    line = one_error_line(capsys, str(folder / file))
    assert "delete" in line


def test_eval_of_a_missing_data_file(tmp_path: Path, scripted, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(eval_argv(tmp_path / "typo.jsonl", tmp_path / "out")) == 2
    one_error_line(capsys, "typo.jsonl")


def test_eval_into_a_read_only_out(
    tmp_path: Path, scripted, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 2)
    fail_under(monkeypatch, "mkdir", tmp_path / "out", errno.EROFS, True)
    assert cli(eval_argv(data, tmp_path / "out")) == 2
    one_error_line(capsys, str(tmp_path / "out"), "read-only")


def test_eval_on_a_full_disk(
    tmp_path: Path, scripted, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 2)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a failed write reports it: no file

    monkeypatch.setattr(os, "fsync", full)
    assert cli(eval_argv(data, tmp_path / "out")) == 2
    one_error_line(capsys, str(tmp_path / "out" / "test"), "the disk is full")


# ---------------------------------------------------------------------------------------------- report


def test_report_over_non_utf8_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    write_eval(runs, "7b", "beta", "test", [True, False])
    items = runs / "7b" / "beta" / "eval" / "test" / "items.jsonl"
    items.write_bytes(items.read_bytes().replace(b'"output": ""', b'"output": "\xff"', 1))
    assert cli(["report", "--runs", str(runs), "--out", str(tmp_path / "r"), "--no-wandb"]) == 2
    one_error_line(capsys, f"{items}:1", "UTF-8")


@pytest.mark.parametrize("flag", ["--runs", "--compare-runs"])
def test_report_with_a_mistyped_runs_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    runs = tmp_path / "runs"
    write_eval(runs, "7b", "beta", "test", [True, False])
    given = {"--runs": runs, "--compare-runs": None, flag: tmp_path / "runz"}
    argv = [arg for key, value in given.items() if value is not None for arg in (key, str(value))]
    assert cli(["report", *argv, "--out", str(tmp_path / "r"), "--no-wandb"]) == 2
    one_error_line(capsys, flag, "runz")
    assert not (tmp_path / "r").exists()


def test_report_and_tiny_model_refuse_a_file_as_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine")
    (tmp_path / "runs").mkdir()
    assert cli(["report", "--runs", str(tmp_path / "runs"), "--out", str(taken), "--no-wandb"]) == 2
    one_error_line(capsys, "--out", str(taken))
    assert cli(["tiny-model", "--out", str(taken)]) == 2
    one_error_line(capsys, "--out", str(taken))
    assert taken.read_text() == "mine"


# ---------------------------------------------------------------------------------------------- run


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pathmmu_source: Path, tiny_model: Path) -> Path:
    """Converted data (PATHVLM_DATA), a runs root (PATHVLM_RUNS) and a local base model folder (the tiny
    model: the runner checks it before it launches)."""
    from tools.data.pathmmu import convert_pathmmu

    convert_pathmmu(pathmmu_source, tmp_path / "data" / "pathmmu", sizes=(8, 8))
    monkeypatch.setenv("PATHVLM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PATHVLM_RUNS", str(tmp_path / "runs"))
    (tmp_path / "base").symlink_to(tiny_model, target_is_directory=True)
    return tmp_path


@pytest.mark.parametrize("content", [b'{"split_unit": ', b"\xff\xfe", b"[1, 2]"])
def test_dry_run_with_a_corrupt_manifest(
    data_env: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    manifest = data_env / "data" / "pathmmu" / "manifest.json"
    manifest.write_bytes(content)
    assert cli(["run", "alpha", "--profile", "cpu", "--dry-run"]) == 2
    one_error_line(capsys, str(manifest))


def _run_alpha(data_env: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> int:
    """``pathvlm run alpha`` whose engine is ``python -c script``."""
    monkeypatch.setattr(LlamaFactory, "command", lambda engine: [sys.executable, "-c", script])
    base = f"base_model={data_env / 'base'}"
    return cli(["run", "alpha", "--profile", "cpu", "--runs", str(data_env / "runs"), "--set", base])


def test_run_into_a_read_only_runs_root(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_under(monkeypatch, "mkdir", data_env / "runs", errno.EROFS, True)
    assert _run_alpha(data_env, monkeypatch, "print('step')") == 2
    one_error_line(capsys, str(data_env / "runs"), "read-only")


def test_run_into_a_full_runs_root(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_under(monkeypatch, "write_text", data_env / "runs", errno.ENOSPC, False)
    assert _run_alpha(data_env, monkeypatch, "print('step')") == 2
    one_error_line(capsys, str(data_env / "runs" / "tiny" / "alpha"), "the disk is full")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_run_whose_train_log_fills_the_disk(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = Run(data_env / "runs", "tiny", "alpha").train_log
    log.parent.mkdir(parents=True)
    log.symlink_to("/dev/full")
    assert _run_alpha(data_env, monkeypatch, "print('step 1', flush=True)") == 2
    one_error_line(capsys, log.name, "the disk is full")


def test_ctrl_c_during_training_is_one_line(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "import os, signal, time; os.kill(os.getppid(), signal.SIGINT); time.sleep(30)"
    # A pytest started in the background by a non-interactive shell inherits SIGINT ignored; a terminal's
    # Ctrl-C reaches the runner as Python's KeyboardInterrupt, which is what this test is about.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert _run_alpha(data_env, monkeypatch, script) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == "run: interrupted (Ctrl-C); run the same command again to resume"
    assert len([line for line in err.splitlines() if "interrupted" in line]) == 1


@pytest.mark.parametrize(
    ("script", "says", "never"),
    [
        ("raise ValueError('learning_rate must be > 0')", "fix the value it names", "resumes"),
        (
            "import json; print('loading /r/checkpoint-20/trainer_state.json'); json.loads('{')",
            "move /r/checkpoint-20 aside",
            "fix the value",
        ),
        ("raise MemoryError()", "lower the batch size per device", "fix the value"),
        (
            "print('torch.OutOfMemoryError: CUDA out of memory.'); raise SystemExit(1)",
            "--profile lean",
            "fix",
        ),
        ("raise RuntimeError('NCCL timeout')", "resumes from the last checkpoint", "fix the value"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "out-of-memory killer", "fix the value"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", "signal SIGTERM", "fix the value"),
    ],
)
def test_engine_failures_say_what_to_do_by_cause(
    data_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    script: str,
    says,
    never,
) -> None:
    assert _run_alpha(data_env, monkeypatch, script) == 2
    line = one_error_line(capsys, "the engine exited with code", "train.log")
    assert says in line and (not never or never not in line), line


def test_a_failed_step_process_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from tools.dev import smoke

    def fail(args) -> int:
        raise subprocess.CalledProcessError(2, ["pathvlm", "tiny-model", "--out", "/x y"])

    monkeypatch.setattr(smoke, "_run", fail)
    assert cli(["smoke", "--dir", "d"]) == 2
    one_error_line(capsys, "pathvlm tiny-model --out '/x y' exited with code 2")


# ---------------------------------------------------------------------------------------------- entry


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--runs", "/nonexistent/runs", "--no-wandb"],
        ["eval", "--model", "m", "--data", "/nonexistent/test.jsonl"],
        ["data", "check", "/nonexistent/data"],
    ],
)
def test_the_installed_entry_prints_one_line(argv: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "/nonexistent" in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def test_an_unknown_engine_set_on_the_command_line_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "alpha", "--profile", "cpu", "--runs", str(tmp_path), "--set", "engine=foo", "--dry-run"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "engine: 'foo', expected one of ['llamafactory', 'easyr1']" in err
