"""The report's stage roles come from the stage files: a new stage file changes the chain, the GRPO curves and
the paired comparisons with no code change; a ``compare_with`` naming no stage is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_registry import ZETA, recipes  # noqa: F401  (the fixture)

from tools.recipe.registry import RecipeError, stages
from tools.report import stages as roles


def test_the_paper_stages_give_the_papers_roles() -> None:
    assert roles.chain() == ("base", "alpha", "beta", "r1")
    assert roles.grpo_chain() == ("beta", "r1")
    assert roles.comparisons() == (("r1", "beta"), ("beta", "alpha"), ("beta", "gamma"), ("epsilon", "delta"))
    assert roles.chain_steps() == (("r1", "beta"), ("beta", "alpha"))


def test_a_new_stage_file_extends_the_roles(recipes: Path) -> None:  # noqa: F811
    zeta = ZETA.replace("parent: beta", "parent: r1").replace(
        "  paper_steps: null\n", "  paper_steps: null\n  compare_with: [r1, beta]\n"
    )
    (recipes / "stages" / "zeta.yaml").write_text(zeta)
    assert roles.chain() == ("base", "alpha", "beta", "r1", "zeta")
    assert roles.grpo_chain() == ("beta", "r1", "zeta")
    assert roles.comparisons()[:2] == (("zeta", "r1"), ("zeta", "beta"))
    assert roles.chain_steps()[0] == ("zeta", "r1")


def test_compare_with_must_name_stages(recipes: Path) -> None:  # noqa: F811
    zeta = ZETA.replace("  paper_steps: null\n", "  paper_steps: null\n  compare_with: [omega]\n")
    (recipes / "stages" / "zeta.yaml").write_text(zeta)
    with pytest.raises(RecipeError, match=r"about.compare_with: no stage \['omega'\]"):
        stages()
