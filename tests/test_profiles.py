"""Hardware profiles: each validates for every stage x size x budget (tests/test_recipes.py), keeps the
budget's science on its GPUs, and declares the job resources the sbatch scripts ask for."""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

import pytest

from tools.common.paths import RECIPES_ENV, recipes_dir
from tools.recipe import registry
from tools.recipe.compose import compose, to_container
from tools.recipe.registry import RecipeError
from tools.recipe.validate import validate
from tools.train.profile_args import check_job, resources

BUDGETS, PROFILES, SIZES = registry.budgets(), registry.profiles(), registry.sizes()
GRPO = [s for s, info in registry.stages().items() if info.engine == "easyr1"]
SFT = [s for s, info in registry.stages().items() if info.engine == "llamafactory"]
GPU_PROFILES = [p for p in PROFILES if registry.profile(p).gpus_per_node > 0]  # cpu: TRL's budget of its own


def _easyr1(stage: str, profile: str, budget: str, size: str = "7b") -> dict:
    return to_container(compose(stage, size, profile, budget=budget))["easyr1"]


@pytest.mark.parametrize(("profile", "budget"), itertools.product(GPU_PROFILES, BUDGETS))
def test_grpo_profiles_train_the_budgets_prompts_in_the_smallest_valid_updates(
    profile: str, budget: str
) -> None:
    """Every profile trains the budget's prompts (2 epochs of 1,000) with G = 4; an update holds the budget's
    prompts, or (8 GPUs, paper budget: 4 responses cannot split over 8) the fewest the GPUs allow."""
    reference = _easyr1("beta", "h20x4", budget)
    cfg = _easyr1("beta", profile, budget)
    prompts = cfg["trainer"]["max_steps"] * cfg["data"]["rollout_batch_size"]
    assert prompts == reference["trainer"]["max_steps"] * reference["data"]["rollout_batch_size"] == 2000
    gpus = cfg["trainer"]["n_gpus_per_node"] * cfg["trainer"]["nnodes"]
    assert gpus == to_container(compose("beta", "7b", profile))["gpus_per_node"]
    update, n = cfg["worker"]["actor"]["global_batch_size"], cfg["worker"]["rollout"]["n"]
    smallest = min(p for p in range(1, 9) if p * n % gpus == 0)
    assert update == max(reference["worker"]["actor"]["global_batch_size"], smallest), (update, smallest)
    assert n == 4 and cfg["data"]["max_response_length"] == reference["data"]["max_response_length"]


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_sft_profiles_keep_the_paper_epochs_and_the_smallest_effective_batch(profile: str) -> None:
    cfg = to_container(compose("alpha", "7b", profile))
    lf = cfg["llamafactory"]
    effective = lf["per_device_train_batch_size"] * lf["gradient_accumulation_steps"] * cfg["gpus_per_node"]
    assert effective == max(4, cfg["gpus_per_node"])  # the h20x4 batch of 4, or one sample per GPU
    assert lf["num_train_epochs"] == 10.0 and lf["cutoff_len"] == 2048 and lf["freeze_vision_tower"]


def test_lean_trains_lora_with_offload_and_says_so() -> None:
    sft = to_container(compose("alpha", "3b", "lean"))["llamafactory"]
    assert (sft["finetuning_type"], sft["lora_target"], sft["disable_gradient_checkpointing"]) == (
        "lora",
        "all",
        False,
    )
    grpo = _easyr1("beta", "lean", "paper", size="3b")
    actor = grpo["worker"]["actor"]
    assert actor["model"]["lora"]["rank"] > 0 and actor["model"]["lora"]["exclude_modules"] == ".*visual.*"
    assert actor["model"]["enable_gradient_checkpointing"] and actor["offload"]["offload_params"]
    header = registry.recipe_file("profiles", "lean").read_text()
    for changed in ("LoRA", "learning rates", "reference model"):
        assert changed in header  # the paper settings it changes, stated in the file


def test_lean_host_memory_holds_7b_with_sleeping_engines_and_an_offloaded_actor() -> None:
    """lean.yaml's arithmetic: one sleeping vLLM engine per GPU keeps the bf16 weights in host memory, the
    offloaded actor keeps them once more; ~16 GB for LoRA states, the Ray workers' runtime and batches."""
    res = resources("lean")
    params = 8.3e9  # Qwen2.5-VL-7B
    weights_gb = params * 2 / 1e9
    need_gb = weights_gb * res.gpus_per_node + weights_gb + 16
    assert need_gb > 65
    assert res.mem_mb() * 2**20 / 1e9 >= need_gb, f"lean asks for {res.mem}, 7B needs ~{need_gb:.0f} GB"


def test_h100x8_is_a100x8_on_faster_gpus() -> None:
    for stage in ("alpha", "beta"):
        a100, h100 = (to_container(compose(stage, "7b", p)) for p in ("a100x8", "h100x8"))
        assert {**a100, "profile": "h100x8", "experiment": "paper-h100x8"} == h100


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_declares_its_engines_and_job_resources(profile: str) -> None:
    cfg = to_container(compose("alpha", "7b", profile))
    info = registry.profile(profile)
    assert info.grpo_engine in registry.GRPO_ENGINES and info.eval_backend in registry.EVAL_BACKENDS
    res = resources(profile)
    assert res.gpus_per_node == cfg["gpus_per_node"] and res.cpus_per_task >= 1
    assert res.sbatch_options() == [f"--gres=gpu:{res.gpus_per_node}", f"--cpus-per-task={res.cpus_per_task}",
                                    f"--mem={res.mem}"]  # fmt: skip
    assert "slurm" not in cfg  # job resources are not part of the recipe (nor of its hash)


def test_a_job_without_gpus_is_refused_and_other_counts_are_kept(capsys: pytest.CaptureFixture) -> None:
    lean = resources("lean")
    assert "submit with slurm/submit.sh" in check_job(lean, {"SLURM_JOB_ID": "1"})[0]
    assert check_job(lean, {"SLURM_GPUS_ON_NODE": "1", "SLURM_CPUS_PER_TASK": "4"}) == []
    assert "GPUs per node 1 differ from profile lean's 2 (kept)" in capsys.readouterr().err
    assert check_job(resources("cpu"), {}) == []


def _profiles_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(recipes_dir(), tmp_path / "recipes")
    monkeypatch.setenv(RECIPES_ENV, str(tmp_path / "recipes"))
    return tmp_path / "recipes" / "profiles"


@pytest.mark.parametrize(
    ("slurm", "expected"),
    [
        ("slurm:\n  cpus_per_task: 0\n  mem: 64G\n", "slurm.cpus_per_task: 0, expected an integer >= 1"),
        ("slurm:\n  cpus_per_task: 8\n  mem: lots\n", "slurm.mem: 'lots'"),
        ("slurm:\n  cpus_per_task: 8\n", "slurm.mem: missing"),
        ("slurm:\n  cpus_per_task: 8\n  mem: 1G\n  gpus: 2\n", "slurm.gpus: unknown key"),
        ("", "slurm: None, expected a mapping"),
    ],
)
def test_bad_slurm_blocks_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slurm: str, expected: str
) -> None:
    profiles = _profiles_copy(tmp_path, monkeypatch)
    (profiles / "mine.yaml").write_text(f"profile: mine\ngpus_per_node: 2\n{slurm}")
    with pytest.raises(RecipeError, match=expected.replace("(", r"\(").replace(".", r"\.")) as info:
        resources("mine")
    assert "mine.yaml" in info.value.where


def test_per_budget_overlay_reaches_only_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _easyr1("beta", "a100x8", "paper")["data"]["rollout_batch_size"] == 8  # budgets.paper of a100x8
    profiles = _profiles_copy(tmp_path, monkeypatch)
    text = (profiles / "h20x4.yaml").read_text()
    (profiles / "h20x4.yaml").write_text(
        text + "budgets:\n  fast:\n    easyr1:\n      trainer:\n        max_steps: 7\n"
    )
    assert _easyr1("beta", "h20x4", "fast")["trainer"]["max_steps"] == 7
    assert _easyr1("beta", "h20x4", "paper")["trainer"]["max_steps"] == 500
    (profiles / "h20x4.yaml").write_text(text + "budgets:\n  fastest: {}\n")
    with pytest.raises(RecipeError, match="budgets.fastest: unknown budget"):
        compose("beta", "7b", "h20x4")


@pytest.mark.parametrize(("key", "value"), [("grpo_engine", "verl"), ("eval_backend", "sglang")])
def test_bad_engine_choices_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    profiles = _profiles_copy(tmp_path, monkeypatch)
    text = (profiles / "lean.yaml").read_text()
    (profiles / "lean.yaml").write_text(re.sub(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.M))
    with pytest.raises(registry.RecipeError, match=f"{key}: '{value}', expected one of"):
        registry.profile("lean")


@pytest.mark.parametrize("size", SIZES)
def test_eight_gpu_paper_budget_is_refused_by_the_batch_rules_without_the_profiles_override(
    size: str,
) -> None:
    """Why a100x8 needs its budgets.paper part: h20x4's paper batches on 8 GPUs break EasyR1's rules."""
    with pytest.raises(RecipeError, match="rollout_batch_size 4 is not divisible by the 8 GPUs"):
        validate(compose("beta", size, "h20x4", ["easyr1.trainer.n_gpus_per_node=8"]))


@pytest.mark.parametrize(("profile", "field", "value"), [
    ("cpu", "eval_backend", "hf"), ("h20x4", "eval_backend", "vllm"), ("cpu", "grpo_engine", "trl"),
    ("a100x8", "gpus_per_node", "8"),
])  # fmt: skip
def test_scripts_read_one_profile_declaration(
    profile: str, field: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    from tools.train.profile_args import main

    assert main(["--profile", profile, "--field", field]) == 0
    assert capsys.readouterr().out == f"{value}\n"
    assert main(["--profile", "nope", "--field", field]) == 2
    assert "nope.yaml" in capsys.readouterr().err
