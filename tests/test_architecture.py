"""The layering of ``tools/`` and ``rewards/``, read from the source with ``ast`` (nothing is imported).

Each rule is a function from the parsed modules to its violations, one ``file:line: why`` each; a test per
rule runs it on this repository, and a test per rule shows it on a tiny fake package in ``tmp_path``.

- no import cycle between files;
- a folder imports only folders of a lower rank (``RANKS``), never a sibling of the same rank;
- no function-local import of our own modules (an import under ``if TYPE_CHECKING:`` at module level is
  module level);
- no production module over ``MAX_LINES`` lines;
- ``tools.dev`` (the development harness) is imported by nothing in production: ``tools/cli.py`` names its
  commands in the ``COMMANDS`` table, as strings.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("tools", "rewards")
MAX_LINES = 400
DEV = "tools.dev"
DEV_DISPATCH = "tools.cli"  # imports tools.dev by name from its COMMANDS table (importlib.import_module)
IMPORT_FUNCTIONS = ("import_module", "__import__")

# folder -> rank: an import goes only to a lower rank. A top-level file of tools/ is a folder of its own.
RANKS = {
    "tools.common": 0,
    "rewards": 0,
    "tools.recipe": 1,
    "tools.data": 2,
    "tools.evaluation": 2,
    "tools.train": 3,
    "tools.report": 3,
    "tools.dev": 4,
    "tools": 5,  # tools/__init__.py
    "tools.cli": 5,
    "tools.preflight": 5,
    "tools.gpu_host_check": 5,
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module of ours (a package's __init__ where no submodule matches)
    line: int
    local: bool  # inside a function or class body


@dataclass(frozen=True)
class Code:
    root: Path
    files: dict[str, Path]  # module name -> file
    trees: dict[str, ast.Module]
    imports: list[Import]

    def where(self, module: str, line: int | None = None) -> str:
        path = self.files[module].relative_to(self.root).as_posix()
        return f"{path}:{line}" if line else path


def parse(root: Path) -> Code:
    """Every module of ``PACKAGES`` under ``root`` and its imports of our own modules."""
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    trees = {module: ast.parse(path.read_text(encoding="utf-8")) for module, path in files.items()}
    imports = []
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node, local in _import_nodes(trees[module]):
            targets = {_ours(name, files) for name in _names(node, package)} - {None, module}
            imports += [Import(module, target, node.lineno, local) for target in sorted(targets)]
    return Code(root, files, trees, imports)


def _import_nodes(tree: ast.AST, local: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, local
        inner = local or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))
        yield from _import_nodes(node, inner)


def _names(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The full names an import statement imports (``from a import b``: ``a.b``, which may be a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names]


def _ours(name: str, files: dict[str, Path]) -> str | None:
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def folder(module: str) -> str:
    """``tools.data.cli`` -> ``tools.data``; ``rewards.judge.loop`` -> ``rewards``; ``tools.cli`` itself."""
    parts = module.split(".")
    if parts[0] == "rewards":
        return "rewards"
    return ".".join(parts[:2])


# ---- the rules: Code -> violations ----------------------------------------------------------------------


def import_cycles(code: Code) -> list[str]:
    """Strongly connected components of the file import graph (Tarjan), each with its edges."""
    graph: dict[str, set[str]] = {module: set() for module in code.files}
    for edge in code.imports:
        graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                components.append(set(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for module in sorted(graph):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return [
        "import cycle: "
        + "; ".join(
            f"{code.where(edge.source, edge.line)} imports {edge.target}"
            for edge in code.imports
            if edge.source in component and edge.target in component
        )
        for component in components
    ]


def rank_violations(code: Code) -> list[str]:
    problems = []
    for edge in code.imports:
        source, target = folder(edge.source), folder(edge.target)
        if source == target:
            continue
        if source not in RANKS or target not in RANKS:
            unknown = source if source not in RANKS else target
            problems.append(f"{code.where(edge.source, edge.line)}: folder {unknown} has no rank in RANKS")
        elif RANKS[target] >= RANKS[source]:
            problems.append(
                f"{code.where(edge.source, edge.line)}: {source} (rank {RANKS[source]}) imports "
                f"{edge.target} (rank {RANKS[target]}); an import goes only to a lower rank"
            )
    return problems


def local_imports(code: Code) -> list[str]:
    return [
        f"{code.where(edge.source, edge.line)}: imports {edge.target} inside a function or class: "
        "import it at the top (a cycle it dodged is a layering fault)"
        for edge in code.imports
        if edge.local
    ]


def long_modules(code: Code) -> list[str]:
    sizes = {module: len(path.read_bytes().splitlines()) for module, path in code.files.items()}
    return [
        f"{code.where(module)}: {lines} lines (at most {MAX_LINES}: one job per module)"
        for module, lines in sorted(sizes.items(), key=lambda item: -item[1])
        if lines > MAX_LINES
    ]


def dev_imports(code: Code) -> list[str]:
    """Imports of tools.dev from outside it: statements, and import_module("tools.dev...") calls except in
    the CLI's dispatch."""
    problems = [
        f"{code.where(edge.source, edge.line)}: imports {edge.target} (the development harness)"
        for edge in code.imports
        if _is_dev(edge.target) and not _is_dev(edge.source)
    ]
    for module, tree in code.trees.items():
        if _is_dev(module) or module == DEV_DISPATCH:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", None)) in IMPORT_FUNCTIONS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and _is_dev(str(node.args[0].value))
            ):
                problems.append(f"{code.where(module, node.lineno)}: imports {node.args[0].value} by name")
    return problems


def _is_dev(module: str) -> bool:
    return module == DEV or module.startswith(DEV + ".")


RULES: dict[str, Callable[[Code], list[str]]] = {
    "no import cycle between files": import_cycles,
    "folders import only lower ranks": rank_violations,
    "no function-local import of tools.* / rewards.*": local_imports,
    f"no production module over {MAX_LINES} lines": long_modules,
    "tools.dev is imported by nothing in production": dev_imports,
}


@pytest.fixture(scope="module")
def repository() -> Code:
    return parse(REPO)


@pytest.mark.parametrize("rule", RULES)
def test_repository_keeps_the_rule(repository: Code, rule: str) -> None:
    problems = RULES[rule](repository)
    assert not problems, f"{rule}: {len(problems)} violation(s)\n" + "\n".join(problems)


def test_every_folder_has_a_rank(repository: Code) -> None:
    assert sorted({folder(module) for module in repository.files} - set(RANKS)) == []


# ---- each rule catches a violation in a fake package ------------------------------------------------------

CLEAN = {
    "tools/__init__.py": "",
    "tools/common/__init__.py": "",
    "tools/common/text.py": "WIDTH = 110\n",
    "tools/recipe/__init__.py": "",
    "tools/recipe/registry.py": "from tools.common.text import WIDTH\n",
    "tools/data/__init__.py": "",
    "tools/data/cli.py": "from tools.recipe import registry\nfrom tools.common import text\n",
    "tools/dev/__init__.py": "",
    "tools/dev/synth.py": "from tools.data import cli\n",
    "tools/cli.py": 'import importlib\nCOMMANDS = {"synth": "tools.dev.synth"}\n'
    "def main(name):\n    return importlib.import_module(COMMANDS[name])\n",
    "rewards/__init__.py": "",
    "rewards/rules.py": "from typing import TYPE_CHECKING\n\n"
    "if TYPE_CHECKING:\n    from rewards import judge\n",
    "rewards/judge.py": "import json\n",
}

# rule -> (files added to CLEAN, a violation it must report)
VIOLATIONS = {
    "no import cycle between files": (
        {"tools/common/a.py": "from tools.common import b\n", "tools/common/b.py": "from . import a\n"},
        "tools/common/a.py:1 imports tools.common.b; tools/common/b.py:1 imports tools.common.a",
    ),
    "folders import only lower ranks": (
        {
            "tools/evaluation/__init__.py": "",
            "tools/evaluation/stats.py": "",
            "tools/data/report.py": "import json\n\nfrom tools.evaluation import stats\n",
        },
        "tools/data/report.py:3: tools.data (rank 2) imports tools.evaluation.stats (rank 2)",
    ),
    "no function-local import of tools.* / rewards.*": (
        {"tools/data/lazy.py": "def f():\n    import json\n    from rewards.judge import x\n"},
        "tools/data/lazy.py:3: imports rewards.judge inside a function",
    ),
    f"no production module over {MAX_LINES} lines": (
        {"rewards/long.py": "x = 1\n" * (MAX_LINES + 1)},
        f"rewards/long.py: {MAX_LINES + 1} lines",
    ),
    "tools.dev is imported by nothing in production": (
        {
            "tools/preflight.py": "import importlib\nimportlib.import_module('tools.dev.synth')\n",
            "tools/gpu_host_check.py": "from tools.dev import synth\n",
            "tools/dev/synth.py": "",
        },
        "tools/preflight.py:2: imports tools.dev.synth by name",
    ),
}


def _write(root: Path, files: dict[str, str]) -> Code:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return parse(root)


@pytest.mark.parametrize("rule", RULES)
def test_rule_passes_a_clean_package(tmp_path: Path, rule: str) -> None:
    assert RULES[rule](_write(tmp_path, CLEAN)) == []


@pytest.mark.parametrize("rule", RULES)
def test_rule_reports_the_offending_file_and_line(tmp_path: Path, rule: str) -> None:
    files, expected = VIOLATIONS[rule]
    problems = RULES[rule](_write(tmp_path, CLEAN | files))
    assert any(expected in problem for problem in problems), problems


def test_an_unranked_folder_is_reported(tmp_path: Path) -> None:
    code = _write(
        tmp_path, CLEAN | {"tools/misc/__init__.py": "", "tools/data/odd.py": "import tools.misc\n"}
    )
    assert rank_violations(code) == ["tools/data/odd.py:1: folder tools.misc has no rank in RANKS"]


def test_the_gpu_host_check_may_not_import_the_harness(tmp_path: Path) -> None:
    files, _ = VIOLATIONS["tools.dev is imported by nothing in production"]
    problems = dev_imports(_write(tmp_path, CLEAN | files))
    assert "tools/gpu_host_check.py:1: imports tools.dev.synth (the development harness)" in problems
