"""recipes/README.md and the recipe files' header commands stay in step with the recipes and the CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tools.common.paths import recipes_dir
from tools.recipe import registry
from tools.recipe.compose import compose, stage_file, to_container

STAGES = registry.stages()
SIZES, PROFILES, BUDGETS = registry.sizes(), registry.profiles(), registry.budgets()
README = recipes_dir() / "README.md"
RECIPE_FILES = sorted(recipes_dir().glob("*/*.yaml"))
COMMAND = re.compile(r"^(?:#\s+)?((?:make|pathvlm) .+?)\s*$")


def _header(path: Path) -> list[str]:
    """The leading comment block of a YAML file."""
    lines = path.read_text().splitlines()
    return [line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]]


def _header_commands(path: Path) -> list[str]:
    return [m.group(1) for line in _header(path) if (m := COMMAND.match(line))]


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _check_command(command: str, makefile: str) -> None:
    tokens = shlex.split(command)
    if tokens[0] == "make":
        targets = [t for t in tokens[1:] if "=" not in t]
        assert targets and all(t in STAGES for t in targets), command
        assert all(re.search(rf"^{t}:", makefile, flags=re.MULTILINE) for t in targets), command
        variables = dict(t.split("=", 1) for t in tokens[1:] if "=" in t)
        assert set(variables) <= {"SIZE", "PROFILE", "BUDGET", "SEEDS"}, command
        assert variables.get("BUDGET", "paper") in BUDGETS, command
        assert variables.get("SIZE", "7b") in SIZES and variables.get("PROFILE", "h20x4") in PROFILES, command
    else:
        from tools.cli import build_parser

        args = build_parser().parse_args(tokens[1:])  # the real CLI accepts it
        assert args.command in {"run", "recipe"} and args.stage in STAGES, command


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_recipe_file_opens_with_a_comment_giving_its_command(path: Path, repo_root: Path) -> None:
    assert path.read_text().startswith("# ")
    if path.name.startswith("_"):
        return  # base files are not run on their own
    commands = _header_commands(path)
    assert commands, f"{path}: no command in the opening comment"
    makefile = (repo_root / "Makefile").read_text()
    for command in commands:
        _check_command(command, makefile)
    if path.parent.name == "stages":
        assert any(f"make {path.stem} " in c for c in commands) and any(
            f"run {path.stem} " in c for c in commands
        )


@pytest.mark.parametrize("stage", STAGES)
def test_readme_gives_each_stage_the_commands_of_its_file(stage: str) -> None:
    readme_commands = _readme_commands()
    for command in _header_commands(stage_file(stage)):
        assert command in readme_commands, f"{command!r} ({stage_file(stage).name}) missing from {README}"


def test_every_readme_command_runs(repo_root: Path) -> None:
    makefile = (repo_root / "Makefile").read_text()
    commands = _readme_commands()
    assert len(commands) >= 2 * len(STAGES)
    for command in commands:
        _check_command(command, makefile)


ITEMS = {"alpha": 3000}  # sft split; every other stage trains on the 1,000-item rl split
H20X4_GPUS = 4


def _budget_figures(stage: str, budget: str) -> dict[str, int]:
    """Optimizer steps, EasyR1 steps, epochs, prompts (samples) and responses of a composed h20x4 recipe."""
    cfg = to_container(compose(stage, "7b", "h20x4", budget=budget))
    items = ITEMS.get(stage, 1000)
    if STAGES[stage].engine == "llamafactory":
        lf = cfg["llamafactory"]
        batch = lf["per_device_train_batch_size"] * lf["gradient_accumulation_steps"] * H20X4_GPUS
        assert lf["max_steps"] == -1 and items * lf["num_train_epochs"] % batch == 0
        steps = int(items * lf["num_train_epochs"] // batch)
        return {"steps": steps, "epochs": int(lf["num_train_epochs"]), "prompts": steps * batch}
    e = cfg["easyr1"]
    rollout, update = e["data"]["rollout_batch_size"], e["worker"]["actor"]["global_batch_size"]
    prompts = e["trainer"]["max_steps"] * rollout
    assert e["trainer"]["n_gpus_per_node"] * e["trainer"]["nnodes"] == H20X4_GPUS
    return {
        "steps": prompts // update,
        "easyr1_steps": e["trainer"]["max_steps"],
        "epochs": prompts // items,
        "prompts": prompts,
        "responses": prompts * e["worker"]["rollout"]["n"],
    }


def test_readme_stage_table_matches_the_stage_table() -> None:
    rows = {cells[0]: cells for line in README.read_text().splitlines() if (cells := _cells(line))}
    for stage, info in STAGES.items():
        row = rows[stage]
        assert row[2] == (info.parent or "base model")
        assert ("GRPO" in row[1]) == (info.engine == "easyr1")
        steps = _budget_figures(stage, "paper")["steps"]
        if info.paper_steps is None:
            assert row[5] == f"{steps:,} (chosen)"
        elif info.paper_steps == steps:
            assert row[5] == f"{steps:,} (paper)"
        else:
            assert row[5] == f"{steps:,} (paper says {info.paper_steps:,})"


def test_readme_budget_table_matches_the_budgets() -> None:
    """Rows `| budget | stages | steps | EasyR1 steps | epochs | prompts | responses | ...`, both budgets."""
    rows = [c for line in README.read_text().splitlines() if (c := _cells(line)) and c[0] in BUDGETS]
    seen = set()
    for budget, stages, *cells in rows:
        for stage in stages.split(", "):
            seen.add((budget, stage))
            figures = _budget_figures(stage, budget)
            if cells[0] == "as paper":
                assert figures == _budget_figures(stage, "paper"), (budget, stage)
                continue
            assert cells[0] == f"{figures['steps']:,}", (budget, stage)
            assert cells[1] == (f"{figures['easyr1_steps']:,}" if "easyr1_steps" in figures else "–")
            assert cells[2] == str(figures["epochs"]), (budget, stage)
            assert cells[3] == f"{figures['prompts']:,}", (budget, stage)
            assert cells[4] == (f"{figures['responses']:,}" if "responses" in figures else "–")
            if stage == "r1":
                assert cells[5].startswith(f"≤ {figures['responses']:,}")  # at most one call per response
    assert seen == {(b, s) for b in BUDGETS for s in STAGES}


def test_readme_settings_table_matches_the_recipes() -> None:
    """Each row `| KEY | h20x4 | cpu | a100x8 | h100x8 | lean | why |` states composed values (alpha for SFT
    keys, beta for GRPO)."""
    lines = README.read_text().splitlines()
    header = next(_cells(line) for line in lines if line.startswith("| key | h20x4 |"))
    columns = header[1:-1]  # between `key` and `why`
    assert sorted(columns) == sorted(PROFILES)  # a column per profile file
    rows = [cells for line in lines if (cells := _cells(line)) and cells[0].startswith("`")]
    assert len(rows) >= 20
    for key, *values in (row[: 1 + len(columns)] for row in rows):
        path = key.strip("`").split(".")
        stage = "alpha" if path[0] == "llamafactory" else "beta"
        for profile, documented in zip(columns, values, strict=True):
            node = to_container(compose(stage, "7b", profile))
            for part in path:
                node = node.get(part, "–") if isinstance(node, dict) else "–"
            assert str(node) == documented, (
                f"README says {key} = {documented} in {profile}, the recipe {node}"
            )


def test_readme_memory_note_uses_the_recipe_values() -> None:
    text = README.read_text()
    easyr1 = to_container(compose("beta", "7b", "h20x4"))["easyr1"]
    utilisation = easyr1["worker"]["rollout"]["gpu_memory_utilization"]
    assert f"gpu_memory_utilization: {utilisation}`" in text and f"{utilisation} × 96 GB" in text
    micro = easyr1["worker"]["actor"]["micro_batch_size_per_device_for_update"]
    assert f"micro batch {micro} × 2048 tokens" in text
    assert "divisible" in text and "GPU count" in text


def _cells(line: str) -> list[str] | None:
    if not line.startswith("|") or set(line) <= {"|", "-", " "}:
        return None
    return [cell.strip() for cell in line.strip().strip("|").split("|")]
