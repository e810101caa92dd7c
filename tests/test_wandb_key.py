"""W&B online without a key is refused before anything loads: `pathvlm run` (make) and every sbatch job."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.cli import main as cli_main
from tools.common.wandb_key import problem


@pytest.mark.parametrize(
    ("env", "netrc", "refused"),
    [
        ({"WANDB_MODE": "offline"}, None, False),
        ({"WANDB_MODE": "disabled"}, None, False),
        ({"WANDB_MODE": "online"}, None, True),
        ({}, None, True),  # unset: W&B's default is online
        ({"WANDB_MODE": "online", "WANDB_API_KEY": "k" * 40}, None, False),
        (
            {"WANDB_MODE": "online"},
            "machine api.wandb.ai login user password " + "k" * 40,
            False,
        ),  # wandb login
        ({"WANDB_MODE": "online"}, "machine other.host login user password secret", True),
        (  # a self-hosted W&B server: its own host's entry
            {"WANDB_MODE": "online", "WANDB_BASE_URL": "https://wandb.lab.example"},
            "machine wandb.lab.example login user password secret",
            False,
        ),
    ],
)
def test_online_needs_a_key_in_the_environment_or_netrc(
    tmp_path: Path, env: dict[str, str], netrc: str | None, refused: bool
) -> None:
    if netrc is not None:
        (tmp_path / ".netrc").write_text(netrc + "\n")
    found = problem({"HOME": str(tmp_path), **env})
    assert (found is not None) == refused
    if refused:
        assert "WANDB_API_KEY" in found and "WANDB_MODE=offline" in found and "\n" not in found


def test_run_refuses_online_without_a_key_before_anything_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATHVLM_TINY_MODEL", str(tmp_path / "tiny"))
    assert cli_main(["run", "alpha", "--profile", "cpu", "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: WANDB_MODE=online but no W&B key") and err.count("\n") == 1
    assert not runs.exists() and not (tmp_path / "tiny").exists()  # nothing built, nothing written
