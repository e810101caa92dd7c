"""Shared fixtures. Nothing here (or in any test) may reach a model hub or the network."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread here and in what tests start, as in the cpu profile's engines and the smoke: `make test`
# runs two pytest processes (and their engines) on 2 cores, where a second thread mostly waits.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


def _starts_early(item: pytest.Item) -> bool:
    return hasattr(getattr(item, "function", None), "start_early")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that wait on background work run last: the work has the whole session to finish."""
    items.sort(key=_starts_early)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start what selected tests wait for in the background (``test.start_early``), beside the other tests."""
    for item in [] if session.config.option.collectonly else session.items:
        if _starts_early(item):
            item.function.start_early()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL built offline once per test session (read-only for tests)."""
    from tools.dev.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _no_inherited_wandb_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that used wandb in this process leaves WANDB_SERVICE behind; later tests start their own."""
    monkeypatch.delenv("WANDB_SERVICE", raising=False)


@pytest.fixture
def gpu_stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """EasyR1's rollout and dataset modules imported afresh over stand-ins for the GPU-only packages they
    import (vLLM, msgspec, qwen-vl-utils: tests/stubs/README.md); afterwards the stand-ins are gone again, so
    later tests see no vLLM."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "stubs"))
    stale = (
        "vllm",
        "msgspec",
        "qwen_vl_utils",
        "verl.workers.rollout",
        "verl.utils.vllm_utils",
        "verl.utils.dataset",
    )

    def take() -> dict[str, object]:
        return {name: sys.modules.pop(name) for name in [m for m in sys.modules if m.startswith(stale)]}

    before = take()
    yield
    take()
    sys.modules.update(before)
