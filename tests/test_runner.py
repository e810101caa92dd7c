"""`pathvlm run` without training: dry runs, missing parents, `make -n`, the TRL mapping, EasyR1 export."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tools.cli import main as cli_main
from tools.recipe.compose import compose, to_container
from tools.recipe.run import Run

EASYR1_TARBALL = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "EasyR1-b44b311.tar.gz"


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty runs directory (the default one, through PATHVLM_RUNS) and a small synthetic dataset."""
    from tools.data.pathmmu import convert_pathmmu
    from tools.dev.synth import write_synthetic_pathmmu

    convert_pathmmu(
        write_synthetic_pathmmu(tmp_path / "src", 24), tmp_path / "data" / "pathmmu", sizes=(8, 8)
    )
    monkeypatch.setenv("PATHVLM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PATHVLM_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PATHVLM_TINY_MODEL", str(tmp_path / "tiny"))
    return tmp_path / "runs"


@pytest.mark.parametrize(
    ("stage", "command"),
    [
        ("alpha", "-m tools.train.engines.sft_train {runs}/7b/alpha/llamafactory.yaml"),
        ("beta", "-m tools.train.engines.easyr1_main config={runs}/7b/beta/easyr1.yaml"),
        ("r1", "-m tools.train.engines.easyr1_main config={runs}/7b/r1/easyr1.yaml"),
        ("delta", "-m tools.train.engines.sft_train {runs}/7b/delta/llamafactory.yaml"),
    ],
)
def test_dry_run_h20x4_prints_config_and_engine_command(
    runs: Path, capsys: pytest.CaptureFixture[str], stage: str, command: str
) -> None:
    assert cli_main(["run", stage, "--size", "7b", "--profile", "h20x4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.endswith(command.format(runs=runs.resolve())), last
    assert "WANDB_PROJECT=pathvlm-r1" in last and f"WANDB_NAME=7b-{stage}" in last
    assert f"WANDB_JOB_TYPE={stage}" in last and "WANDB_RUN_GROUP=paper-h20x4" in last
    manifest = runs.parent / "data" / "pathmmu" / "manifest.json"
    assert f"manifest_sha256: {hashlib.sha256(manifest.read_bytes()).hexdigest()}" in out
    assert f"stage: {stage}" in out and "freeze_vision_tower: true" in out
    assert not runs.exists(), "a dry run must not write anything"


def test_dry_run_cpu_grpo_uses_trl_engine(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", "beta", "--profile", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        out.strip()
        .splitlines()[-1]
        .endswith(f"-m tools.train.engines.trl_grpo {runs.resolve()}/tiny/beta/config.yaml")
    )
    assert f"model_path: {runs.resolve()}/tiny/alpha/model" in out  # the parent's export, once it exists
    assert "# note: stage beta starts from alpha" in out
    assert not runs.exists() and not (runs.parent / "tiny").exists()


def test_missing_parent_names_the_command_that_makes_it(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["run", "r1", "--size", "tiny", "--profile", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{runs}/tiny/beta/DONE is missing" in err
    assert "\n  pathvlm run beta --size tiny --profile cpu\n" in err
    assert not runs.exists()


def test_a_missing_tiny_base_model_is_refused_with_the_command_that_builds_it(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No recipe key names a command to run: the runner builds nothing, it names `pathvlm tiny-model`."""
    missing = tmp_path / "no model"
    monkeypatch.setenv("PATHVLM_TINY_MODEL", str(missing))
    assert cli_main(["run", "alpha", "--size", "tiny", "--profile", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: base model {missing} does not exist: build it first with "
        f"`pathvlm tiny-model --out '{missing}'`"
    )
    assert not missing.exists() and not runs.exists()
    assert cli_main(["run", "alpha", "--size", "tiny", "--profile", "cpu", "--dry-run"]) == 0
    assert "# note: base model" in capsys.readouterr().out


def test_seed_trains_a_replicate_from_the_parent_of_the_same_seed(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli_main(["run", "beta", "--profile", "h20x4", "--budget", "fast", "--seed", "43", "--dry-run"]) == 0
    )
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert f"# {runs.resolve()}/7b/beta-seed43/config.yaml" in out
    assert f"model_path: {runs.resolve()}/7b/alpha-seed43/model" in out
    assert "\n  pathvlm run alpha --size 7b --profile h20x4 --budget fast --seed 43\n" in out
    assert (
        "budget: fast\n" in out and "seed: 43\n" in out and out.count("seed: 43") == 3
    )  # top, data, rollout
    assert "WANDB_NAME=7b-beta-seed43" in last and "WANDB_JOB_TYPE=beta" in last
    assert "budget-fast" in last and "seed-43" in last
    assert cli_main(["run", "beta", "--profile", "h20x4", "--seed", "42", "--dry-run"]) == 0
    assert f"# {runs.resolve()}/7b/beta/config.yaml" in capsys.readouterr().out  # the recipe's own seed


def test_unfrozen_vision_tower_is_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = ["--set", "easyr1.worker.actor.model.freeze_vision_tower=false"]
    assert cli_main(["run", "epsilon", "--profile", "h20x4", "--dry-run", *overrides]) == 2
    assert "easyr1.worker.actor.model.freeze_vision_tower is False" in capsys.readouterr().err


def test_make_n_prints_the_runner_commands_in_stage_order(repo_root: Path) -> None:
    out = subprocess.run(
        ["make", "-n", "alpha", "beta", "r1", "SIZE=3b", "PROFILE=lean"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    runs = [line for line in out.splitlines() if " run " in line]
    assert runs == [
        f".venv/bin/pathvlm run {stage} --size 3b --profile lean --budget paper"
        for stage in ("alpha", "beta", "r1")
    ]
    seeds = subprocess.run(
        ["make", "-n", "beta", "PROFILE=cpu", "BUDGET=fast", "SEEDS=42 43"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line for line in seeds.splitlines() if " run " in line] == [
        f"for seed in 42 43; do .venv/bin/pathvlm run {stage} --size tiny --profile cpu --budget fast "
        "--seed $seed || exit $?; done"
        for stage in ("alpha", "beta")
    ]
    chained = subprocess.run(["make", "-n", "r1"], cwd=repo_root, capture_output=True, text=True, check=True)
    assert [line.split()[2] for line in chained.stdout.splitlines() if " run " in line] == [
        "alpha",
        "beta",
        "r1",
    ]


def _mapping(stage: str, *overrides: str) -> tuple[dict, dict]:
    from tools.train.engines.trl import grpo_arguments

    section = to_container(compose(stage, "7b", "cpu", list(overrides)))["easyr1"]
    return section, grpo_arguments(section, Path("/tmp/out"), "7b-" + stage)


def test_trl_arguments_follow_the_easyr1_keys() -> None:
    section, args = _mapping(
        "beta",
        "easyr1.data.rollout_batch_size=4",
        "easyr1.worker.actor.global_batch_size=4",
        "easyr1.worker.actor.micro_batch_size_per_device_for_update=16",
        "easyr1.worker.actor.loss_avg_mode=seq",
        "easyr1.trainer.save_freq=8",
    )
    data, actor, trainer = section["data"], section["worker"]["actor"], section["trainer"]
    assert args["num_generations"] == section["worker"]["rollout"]["n"] == 4  # paper: G = 4
    assert args["max_prompt_length"] == data["max_prompt_length"]
    assert args["max_completion_length"] == data["max_response_length"]
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (16, 1)
    assert args["steps_per_generation"] == 1  # one update per rollout batch of 4 prompts x 4 completions
    assert args["max_steps"] == trainer["max_steps"] and args["save_steps"] == 8
    assert args["save_total_limit"] == (trainer["save_limit"] if trainer["save_limit"] > 0 else None)
    assert args["beta"] == section["algorithm"]["kl_coef"]
    assert (args["epsilon"], args["epsilon_high"]) == (actor["clip_ratio_low"], actor["clip_ratio_high"])
    assert (args["learning_rate"], args["loss_type"]) == (actor["optim"]["lr"], "grpo")
    assert args["temperature"] == section["worker"]["rollout"]["temperature"]
    assert args["report_to"] == ["wandb"] and args["remove_unused_columns"] is False


def test_trl_arguments_split_a_rollout_batch_into_updates() -> None:
    _, args = _mapping(
        "epsilon",
        "easyr1.data.rollout_batch_size=8",
        "easyr1.worker.actor.global_batch_size=4",
        "easyr1.worker.actor.micro_batch_size_per_device_for_update=4",
        "easyr1.algorithm.disable_kl=true",
        "easyr1.trainer.max_steps=3",
        "easyr1.trainer.save_freq=8",
    )
    # 4 prompts x 4 rollouts per update = 4 micro-batches of 4; a rollout batch of 8 prompts = 2 updates
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (4, 4)
    assert args["steps_per_generation"] == 8
    assert (args["max_steps"], args["save_steps"], args["beta"]) == (6, 16, 0.0)


def test_trl_engine_refuses_batches_that_do_not_divide_with_easyr1s_rules() -> None:
    """One copy of the batch rules (easyr1_check.batch_rules) serves both GRPO engines."""
    from tools.recipe.registry import RecipeError
    from tools.recipe.validate import validate

    with pytest.raises(
        RecipeError, match="rollout_batch_size 6 is not divisible by worker.actor.global_batch_size 8"
    ):
        validate(compose("beta", "7b", "cpu", ["easyr1.data.rollout_batch_size=6"]))


def test_fit_pixels_keeps_images_within_the_pixel_budget() -> None:
    from PIL import Image

    from tools.common.pixels import fit_pixels

    big = fit_pixels(Image.new("RGB", (400, 200)), 3136, 12544)
    small = fit_pixels(Image.new("RGB", (20, 10)), 3136, 12544)
    assert big.width * big.height <= 12544 and big.width == 2 * big.height
    assert small.width * small.height >= 3136 * 0.95 and abs(small.width / small.height - 2) < 0.1


@pytest.mark.slow
def test_trl_arguments_build_a_grpo_config() -> None:
    from trl import GRPOConfig

    section, args = _mapping("r1")
    config = GRPOConfig(**args, use_cpu=True)
    # the generation batch is one rollout batch: whole groups of n completions per prompt
    assert config.generation_batch_size == section["data"]["rollout_batch_size"] * config.num_generations
    assert config.max_steps == section["trainer"]["max_steps"]


@pytest.mark.slow
@pytest.mark.skipif(not EASYR1_TARBALL.is_file(), reason=f"{EASYR1_TARBALL} (vendored EasyR1) not found")
def test_easyr1_export_merges_the_actor_checkpoint_with_easyr1s_merger(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single-rank (non-DTensor) actor checkpoint in EasyR1's layout, merged by its real model_merger.py."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tools.train.engines import easyr1

    with tarfile.open(EASYR1_TARBALL) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("scripts/model_merger.py"))
        tar.extractall(tmp_path / "src", members=[member], filter="data")
    monkeypatch.setenv("EASYR1_HOME", str(tmp_path / "src" / Path(member.name).parent.parent))
    checkpoints = tmp_path / "run" / "checkpoints"
    actor = checkpoints / "global_step_3" / "actor"
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    (actor / "huggingface").mkdir(parents=True)
    torch.save(model.state_dict(), actor / "model_world_size_1_rank_0.pt")
    model.config.save_pretrained(actor / "huggingface")  # transformers 4.57: nested text_config
    AutoProcessor.from_pretrained(tiny_model).save_pretrained(actor / "huggingface")
    (checkpoints / "checkpoint_tracker.json").write_text(json.dumps({"last_global_step": 3}))

    trainer = {"save_checkpoint_path": str(checkpoints)}
    actor_model = {"actor": {"model": {"model_path": str(tiny_model)}}}  # its dtype: float32
    cfg = {"easyr1": {"trainer": trainer, "worker": actor_model}}
    easyr1.EasyR1(cfg, Run.at(tmp_path / "run")).export()

    exported = tmp_path / "run" / "model"
    config = json.loads((exported / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl" and "text_config" not in config
    reloaded = AutoModelForImageTextToText.from_pretrained(exported).state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded[key].float(), value.bfloat16().float()), key  # the merger saves bf16
    assert (exported / "preprocessor_config.json").is_file() and (exported / "tokenizer.json").is_file()


@pytest.mark.slow
def test_prompt_lengths_match_easyr1s_overlong_filter(
    runs: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our prompt length is the one EasyR1's RLHFDataset compares with max_prompt_length, to the token."""
    import types

    from transformers import AutoProcessor

    from tools.common.grpo_rows import load_rows, prompt_length

    monkeypatch.setitem(sys.modules, "qwen_vl_utils", types.ModuleType("qwen_vl_utils"))  # gpu-env only,
    vision = types.ModuleType("qwen_vl_utils.vision_process")  # used by EasyR1 for videos
    vision.fetch_video = None
    monkeypatch.setitem(sys.modules, "qwen_vl_utils.vision_process", vision)
    monkeypatch.delitem(sys.modules, "verl.utils.dataset", raising=False)
    from verl.utils.dataset import RLHFDataset

    data = to_container(compose("beta", "7b", "cpu"))["easyr1"]["data"]
    processor = AutoProcessor.from_pretrained(tiny_model)
    ours = [prompt_length(processor, row) for row in load_rows(data)]
    dataset = RLHFDataset(
        data["train_files"], processor.tokenizer, processor, prompt_key="problem", answer_key="answer",
        image_key="images", min_pixels=data["min_pixels"], max_pixels=data["max_pixels"],
        filter_overlong_prompts=False,
    )  # fmt: skip
    assert len(dataset.dataset) == len(ours)
    for example, length in zip(dataset.dataset, ours, strict=True):
        dataset.max_prompt_length = length
        assert dataset._filter_overlong_prompts(example)
        dataset.max_prompt_length = length - 1
        assert not dataset._filter_overlong_prompts(example)


def test_easyr1_launch_finds_the_resume_step(runs: Path, tiny_model: Path) -> None:
    from tools.train.engines import easyr1

    run = Run.at(runs / "7b" / "beta")
    cfg = easyr1.EasyR1.fill(to_container(compose("beta", "7b", "h20x4")), run, str(tiny_model), "7b-beta")
    engine = easyr1.EasyR1(cfg, run)
    assert engine.resume() is None
    tracker = runs / "7b" / "beta" / "checkpoints" / "checkpoint_tracker.json"
    (tracker.parent / "global_step_7" / "actor").mkdir(parents=True)
    (tracker.parent / "global_step_7" / "dataloader.pt").write_bytes(b"state")  # EasyR1 writes it last
    tracker.write_text(json.dumps({"last_global_step": 7, "best_global_step": None}))
    assert engine.resume() == tracker.parent / "global_step_7"


def test_run_help_lists_the_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tools.cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    for option in ("--size", "--profile", "--runs", "--dry-run", "--force", "--set"):
        assert option in out


def test_the_sft_engine_imports_wandb_before_torch() -> None:
    """``tools.common.wandb_first``: LLaMA-Factory's imports take 55 s instead of 20 s otherwise."""
    code = (
        "import sys, tools.train.engines.sft_train; m = list(sys.modules); "
        "print(m.index('wandb') < m.index('torch') if 'torch' in m else 'wandb' in m)"
    )  # sys.modules keeps the order of the imports
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True"]
