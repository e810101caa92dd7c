"""The recipe files are the registry: a stage or a profile is one YAML file, read with no code change."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from tools.cli import main
from tools.common.paths import recipes_dir
from tools.recipe import registry
from tools.recipe.compose import compose, to_container
from tools.recipe.registry import RecipeError
from tools.recipe.validate import validate

ZETA = """\
# Stage zeta (throw-away): GRPO from beta, format + accuracy.
#   make zeta SIZE=7b PROFILE=h20x4
#   pathvlm run zeta --size 7b --profile h20x4
defaults: [_grpo]
parent: beta
about:
  summary: "GRPO from beta once more"
  label: ζ
  paper_steps: null

easyr1:
  worker:
    reward:
      reward_function: ./rewards/easyr1.py:outcome_reward
"""


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of recipes/ with a throw-away stage (zeta) and profile (laptop), chosen by $PATHVLM_RECIPES."""
    copy = tmp_path / "recipes"
    shutil.copytree(recipes_dir(), copy)
    (copy / "stages" / "zeta.yaml").write_text(ZETA)
    cpu = (copy / "profiles" / "cpu.yaml").read_text()
    laptop = cpu.replace("profile: cpu\n", "profile: laptop\n").replace(
        "torch_threads: 1 ", "torch_threads: 2 "
    )
    (copy / "profiles" / "laptop.yaml").write_text(laptop)
    monkeypatch.setenv("PATHVLM_RECIPES", str(copy))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return copy


def test_a_new_stage_and_profile_file_dry_run_with_no_code_change(
    recipes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert "zeta" in registry.stages() and "laptop" in registry.profiles()
    assert main(["run", "zeta", "--profile", "laptop", "--runs", str(runs), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stage: zeta" in out and "profile: laptop" in out
    assert f"starts from beta, which has not finished ({runs}/tiny/beta/DONE is missing)" in out
    assert "# engine command (trl_grpo):" in out and "OMP_NUM_THREADS=2 " in out  # the profile's engine
    assert main(["run", "zeta", "--profile", "h20x4", "--runs", str(runs), "--dry-run"]) == 0
    assert "# engine command (easyr1):" in capsys.readouterr().out
    assert main(["recipe", "zeta", "--profile", "laptop", "--hash"]) == 0
    from tools.report.paper import model_label, stage_order

    assert model_label("7b", "zeta") == "ζ-7B" and stage_order()[-1] == "zeta"


def test_stages_are_listed_parents_first(recipes: Path) -> None:
    assert list(registry.stages()) == ["alpha", "beta", "r1", "zeta", "gamma", "delta", "epsilon"]


def test_a_profile_must_declare_its_engines(recipes: Path) -> None:
    laptop = recipes / "profiles" / "laptop.yaml"
    laptop.write_text(laptop.read_text().replace("grpo_engine: trl", "grpo_engine: verl"))
    with pytest.raises(registry.RecipeError, match=r"laptop.yaml:\n  - grpo_engine: 'verl', expected one of"):
        registry.profile("laptop")


def test_a_stage_must_declare_its_about_block(recipes: Path) -> None:
    (recipes / "stages" / "zeta.yaml").write_text(ZETA.replace("  paper_steps: null\n", ""))
    with pytest.raises(registry.RecipeError, match=r"zeta.yaml:\n  - missing \['about.paper_steps'\]"):
        registry.stages()


def test_registry_keys_stay_out_of_the_composed_config() -> None:
    cfg = to_container(compose("r1", "7b", "cpu"))
    assert not {"about", "vars", *registry.PROFILE_KEYS} & set(cfg)


def test_every_stage_file_has_a_make_target_and_readme_rows(repo_root: Path) -> None:
    makefile = (repo_root / "Makefile").read_text()
    readme = (repo_root / "README.md").read_text()
    recipes_readme = (repo_root / "recipes" / "README.md").read_text()
    for name in registry.stages():
        assert re.search(rf"^{name}:.*## ", makefile, flags=re.MULTILINE), f"Makefile has no `{name}:` target"
        assert re.search(rf"^\| {name} \| ", recipes_readme, flags=re.MULTILINE), f"recipes/README.md: {name}"
        assert re.search(rf"^\| {name} \(", readme, flags=re.MULTILINE), f"README.md has no row for {name}"


# ---------------------------------------------------------------------------------------------- engines


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("easyr1.algorithm.online_filtering=true", "algorithm.online_filtering: true"),
        ("easyr1.data.mini_rollout_batch_size=16", "data.mini_rollout_batch_size: 16"),
        (
            "easyr1.algorithm.adv_estimator=reinforce_plus_plus",
            'algorithm.adv_estimator: "reinforce_plus_plus"',
        ),
        ("easyr1.algorithm.kl_penalty=kl", 'algorithm.kl_penalty: "kl"'),
    ],
)
def test_the_trl_engine_refuses_easyr1_keys_it_cannot_honour(override: str, key: str) -> None:
    """A DAPO-like recipe (online filtering, over-generation) would otherwise train as plain GRPO on CPU."""
    with pytest.raises(RecipeError) as info:
        validate(compose("beta", "7b", "cpu", [override]))
    assert f"easyr1.{key}, the TRL GRPO engine honours only" in str(info.value)


def test_easyr1_itself_takes_online_filtering() -> None:
    validate(compose("beta", "7b", "h20x4", ["easyr1.algorithm.online_filtering=true"]))


def test_one_pixel_limit_drives_both_engines() -> None:
    override = ["vars.max_pixels=6272"]
    sft = to_container(compose("alpha", "7b", "h20x4", override))["llamafactory"]
    grpo = to_container(compose("beta", "7b", "h20x4", override))["easyr1"]["data"]
    assert sft["image_max_pixels"] == grpo["max_pixels"] == 6272
    cpu = (
        to_container(compose("alpha", "7b", "cpu"))["llamafactory"],
        to_container(compose("beta", "7b", "cpu")),
    )
    assert cpu[0]["image_max_pixels"] == cpu[1]["easyr1"]["data"]["max_pixels"] == 12544


# ---------------------------------------------------------------------------------------------- layout


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    found += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    return found


def test_production_code_imports_nothing_from_the_dev_harness(repo_root: Path) -> None:
    """tools/dev/ (tiny model, fake judge, synthetic data, smoke) is joined in only by the CLI face."""
    tools = repo_root / "tools"
    production = [p for p in tools.rglob("*.py") if "dev" not in p.relative_to(tools).parts[:1]]
    assert [p for p in production if any(m.startswith("tools.dev") for m in _imports(p))] == []
    assert [p for p in production if p.name != "cli.py" and "tools.dev" in p.read_text()] == []


def test_no_code_branches_on_a_profile_or_stage_name(repo_root: Path) -> None:
    pattern = re.compile(
        r"""(profile|stage)["'\]]*\s*[!=]=\s*["'](cpu|h20x4|alpha|beta|r1|gamma|delta|epsilon)["']"""
    )
    hits = [
        f"{p}:{n}"
        for p in (repo_root / "tools").rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
