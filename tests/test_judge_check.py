"""Before r1 trains: one real judge call (rewards/judge/check.py); while it trains: the judge health guard
(rewards/judge/guard.py). A missing or refused key, an unknown model and an unreachable URL are one-line
errors naming the variable or the URL, before any model is loaded; a judge that keeps failing stops the run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rewards.judge import JudgeConfig
from rewards.judge.check import JudgeUnusable, check_judge
from rewards.judge.guard import MARKER, JudgeGuard, JudgeOutage, guard_problems
from tools.cli import main as cli_main
from tools.dev.judge_server import FakeJudgeConfig, JudgeServer

JUDGE = "easyr1.worker.reward.reward_function_kwargs.judge"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(url: str, **overrides: object) -> JudgeConfig:
    values = {"base_url": url, "model": "fake-judge"}
    return JudgeConfig.from_dict({**values, **overrides})


@pytest.fixture(scope="module")
def keyed() -> JudgeServer:
    with JudgeServer(FakeJudgeConfig(api_key="sk-right-key-0123", strict_model=True)) as server:
        yield server


def test_a_working_judge_answers_the_check(keyed: JudgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATHVLM_TEST_JUDGE_KEY", "sk-right-key-0123")
    line = check_judge(config(keyed.url, api_key_env="PATHVLM_TEST_JUDGE_KEY"))
    assert line.startswith(f"judge 'fake-judge' at {keyed.url} answered in ") and "integrity" in line
    assert "sk-right-key" not in line


@pytest.mark.parametrize(
    ("overrides", "key", "expected"),
    [
        ({}, None, "judge: PATHVLM_TEST_JUDGE_KEY is not set: the judge at {url} needs its API key there"),
        (
            {},
            "sk-wrong",
            "judge: {url}/chat/completions refused the key in PATHVLM_TEST_JUDGE_KEY (HTTP 401)",
        ),
        (
            {"model": "gpt-4o"},
            "sk-right-key-0123",
            "judge: {url}/chat/completions answered HTTP 404: model 'gpt-4o' is unknown there "
            "(PATHVLM_JUDGE_MODEL) or the base URL is wrong (PATHVLM_JUDGE_BASE_URL)",
        ),
        ({"api_key_env": None}, None, "refused the request without a key (api_key_env: null) (HTTP 401)"),
    ],
)
def test_a_judge_that_cannot_grade_is_an_error_naming_what_to_fix(
    keyed: JudgeServer, monkeypatch: pytest.MonkeyPatch, overrides: dict, key: str | None, expected: str
) -> None:
    if key is None:
        monkeypatch.delenv("PATHVLM_TEST_JUDGE_KEY", raising=False)
    else:
        monkeypatch.setenv("PATHVLM_TEST_JUDGE_KEY", key)
    settings = {"api_key_env": "PATHVLM_TEST_JUDGE_KEY", **overrides}
    with pytest.raises(JudgeUnusable) as raised:
        check_judge(config(keyed.url, **settings))
    message = str(raised.value)
    assert expected.format(url=keyed.url) in message and "\n" not in message
    assert "sk-" not in message


def test_an_unreachable_judge_is_an_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(JudgeUnusable, match=r"no answer from .*/chat/completions \(connection"):
        check_judge(config(url, api_key_env=None))


def test_a_local_judge_that_needs_no_key_is_checked_without_one() -> None:
    with JudgeServer() as server:
        assert "answered in" in check_judge(config(server.url, api_key_env=None))
        assert server.judge.authorizations == {"Bearer EMPTY": 1}


def test_the_guard_stops_after_k_consecutive_bad_steps() -> None:
    guard = JudgeGuard(0.2, 3)
    for failed, sent in ((4, 10), (10, 10), (1, 10), (3, 10), (0, 0), (5, 10)):  # a good step resets it
        guard.record(failed, sent, {"http_500": failed}, "http_500 from URL")
    with pytest.raises(JudgeOutage) as raised:
        guard.record(2, 4, {"timeout": 2}, "timeout from URL")
    message = str(raised.value)
    assert message.startswith(f"{MARKER} training stopped at reward call 7: more than 20% ")
    assert (
        "(fell back/sent: 3/10, 5/10, 2/4; last step's reasons {'timeout': 2}; last error: timeout" in message
    )
    guard = JudgeGuard(0.2, 1)
    guard.record(2, 10, {}, None)  # exactly the rate is not more than it


@pytest.mark.parametrize(
    ("rate", "steps", "problem"),
    [(1.0, 5, "judge_max_failure_rate: 1.0, expected a number in [0, 1)"),
     (0.2, 0, "judge_guard_steps: 0, expected an integer >= 1"),
     ("x", 5, "judge_max_failure_rate: 'x'"), (0.2, True, "judge_guard_steps: True")],
)  # fmt: skip
def test_guard_keys_are_validated_with_the_recipe(rate: object, steps: object, problem: str) -> None:
    assert any(problem in line for line in guard_problems(rate, steps))
    kwargs = "easyr1.worker.reward.reward_function_kwargs"
    code = cli_main(
        ["recipe", "r1", "--size", "tiny", "--profile", "cpu", "--set",
         f"{kwargs}.judge_max_failure_rate={rate}", f"{kwargs}.judge_guard_steps={steps}"]
    )  # fmt: skip
    assert code == 2


@pytest.fixture(scope="module")
def r1_ready(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """Synthetic data and a runs root where beta is DONE (r1's parent, the tiny model): enough to reach r1's
    launch."""
    from tools.data.pathmmu import convert_pathmmu
    from tools.dev.synth import write_synthetic_pathmmu

    root = tmp_path_factory.mktemp("r1-check")
    convert_pathmmu(write_synthetic_pathmmu(root / "src", 40), root / "data" / "pathmmu", sizes=(16, 8))
    beta = root / "runs" / "tiny" / "beta"
    beta.mkdir(parents=True)
    (beta / "model").symlink_to(tiny_model, target_is_directory=True)
    (beta / "DONE").write_text("0" * 64 + "\n")
    return root


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ([f"{JUDGE}.api_key_env=PATHVLM_TEST_JUDGE_KEY"], "judge: PATHVLM_TEST_JUDGE_KEY is not set"),
        ([], "judge: no answer from http://127.0.0.1:{port}/v1/chat/completions (connection"),
    ],
)
def test_r1_refuses_to_start_without_a_working_judge(
    r1_ready: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sets: list[str],
    expected: str,
) -> None:
    port = free_port()
    monkeypatch.delenv("PATHVLM_TEST_JUDGE_KEY", raising=False)
    for name, value in {
        "PATHVLM_DATA": r1_ready / "data",
        "PATHVLM_JUDGE_PORT": port,
        "PATHVLM_JUDGE_CACHE": r1_ready / "judge-cache",
    }.items():
        monkeypatch.setenv(name, str(value))
    runs = r1_ready / "runs"
    overrides = ["--set", *sets] if sets else []
    code = cli_main(["run", "r1", "--size", "tiny", "--profile", "cpu", "--runs", str(runs), *overrides])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: tiny/r1: " + expected.format(port=port)), err
    assert err.splitlines()[-1] == errors[0]  # one line, nothing after it
    assert not (runs / "tiny" / "r1").exists()  # nothing written, no model loaded
    assert os.environ.get("PATHVLM_TEST_JUDGE_KEY") is None
