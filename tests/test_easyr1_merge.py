"""The GRPO export merges an actor checkpoint with EasyR1's own ``scripts/model_merger.py`` into a temporary
folder and renames it into place only when complete; it is in the base model's dtype (the merger copies the
fp32 actor's config, so exports said ``"dtype": "float32"`` over bf16 weights)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tools.recipe.run import Run
from tools.train.engines import easyr1

EASYR1_TARBALL = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "EasyR1-b44b311.tar.gz"
pytestmark = pytest.mark.skipif(not EASYR1_TARBALL.is_file(), reason=f"{EASYR1_TARBALL} not found")

# A merger killed after its first shard: it wrote the index and one of the two files it names.
KILLED_MERGER = """
import json, os, sys
from safetensors.torch import save_file
import torch
out = os.path.join(sys.argv[sys.argv.index("--local_dir") + 1], "huggingface")
save_file({"a": torch.zeros(2)}, os.path.join(out, "model-00001-of-00002.safetensors"))
shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
index = {"metadata": {}, "weight_map": {"a": shards[0], "b": shards[1]}}
json.dump(index, open(os.path.join(out, "model.safetensors.index.json"), "w"))
"""


@pytest.fixture(scope="module")
def easyr1_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("easyr1")
    with tarfile.open(EASYR1_TARBALL) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("scripts/model_merger.py"))
        tar.extractall(src, members=[member], filter="data")
    return src / Path(member.name).parent.parent


@pytest.fixture(scope="module")
def base(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model published in bf16, as Qwen2.5-VL is."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    base = tmp_path_factory.mktemp("base") / "model"
    AutoModelForImageTextToText.from_pretrained(tiny_model, dtype=torch.bfloat16).save_pretrained(base)
    AutoProcessor.from_pretrained(tiny_model).save_pretrained(base)
    return base


def actor_checkpoint(base: Path, run: Path) -> tuple[Path, dict]:
    """A single-rank actor checkpoint in EasyR1's layout: fp32 weights (the FSDP actor's master copy) and
    the fp32 actor's config in ``huggingface/``."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    checkpoints = run / "checkpoints"
    actor = checkpoints / "global_step_3" / "actor"
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    (actor / "huggingface").mkdir(parents=True)
    torch.save(model.state_dict(), actor / "model_world_size_1_rank_0.pt")
    model.config.save_pretrained(actor / "huggingface")
    AutoProcessor.from_pretrained(base).save_pretrained(actor / "huggingface")
    (checkpoints / "checkpoint_tracker.json").write_text(json.dumps({"last_global_step": 3}))
    cfg = {"easyr1": {"trainer": {"save_checkpoint_path": str(checkpoints)}}}
    cfg["easyr1"]["worker"] = {"actor": {"model": {"model_path": str(base)}}}
    return actor, cfg


def weight_dtypes(model_dir: Path) -> set[torch.dtype]:
    dtypes = set()
    for path in model_dir.glob("*.safetensors"):
        with safe_open(str(path), "pt") as shard:
            dtypes |= {shard.get_tensor(name).dtype for name in shard.keys()}
    return dtypes


@pytest.mark.slow
def test_export_is_in_the_base_models_dtype(
    base: Path, easyr1_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EASYR1_HOME", str(easyr1_home))
    actor, cfg = actor_checkpoint(base, tmp_path / "run")
    assert json.loads((actor / "huggingface" / "config.json").read_text())["dtype"] == "float32"

    easyr1.EasyR1(cfg, Run.at(tmp_path / "run")).export()

    exported = tmp_path / "run" / "model"
    assert json.loads((exported / "config.json").read_text())["dtype"] == "bfloat16"
    assert weight_dtypes(exported) == {torch.bfloat16}
    assert not (actor / easyr1.MERGE_WORK_DIR).exists()


@pytest.mark.slow
def test_an_interrupted_merge_is_redone_never_used(
    base: Path, easyr1_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor, cfg = actor_checkpoint(base, tmp_path / "run")
    # a killed merge of the old layout: config.json + a shard beside it
    (actor / "huggingface" / "model-00001-of-00002.safetensors").write_bytes(b"\0" * 64)
    killed = tmp_path / "killed"
    (killed / "scripts").mkdir(parents=True)
    (killed / "scripts" / "model_merger.py").write_text(KILLED_MERGER)
    monkeypatch.setenv("EASYR1_HOME", str(killed))

    with pytest.raises(RuntimeError, match=r"incomplete model \(1 of 2 tensors missing"):
        easyr1.EasyR1(cfg, Run.at(tmp_path / "run")).export()
    assert not (actor / easyr1.MERGED_DIR).exists() and not (tmp_path / "run" / "model").exists()

    (killed / "scripts" / "model_merger.py").write_text("import sys; sys.exit(9)")  # dies mid-way
    with pytest.raises(subprocess.CalledProcessError):
        easyr1.EasyR1(cfg, Run.at(tmp_path / "run")).export()
    assert not (actor / easyr1.MERGED_DIR).exists()

    monkeypatch.setenv("EASYR1_HOME", str(easyr1_home))
    easyr1.EasyR1(cfg, Run.at(tmp_path / "run")).export()  # the real merger, from scratch
    easyr1.check_complete(actor / easyr1.MERGED_DIR)
    assert not (actor / easyr1.MERGE_WORK_DIR).exists()
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
