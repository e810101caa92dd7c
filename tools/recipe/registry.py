"""The recipe files are the registry: every stage, size, budget and profile is a YAML file in ``recipes/``.

- A **stage** is ``stages/<name>.yaml`` (files starting with ``_`` are bases named under ``defaults``).
  After its defaults it gives ``engine`` (the recipe section it fills: ``llamafactory`` or ``easyr1``),
  ``parent`` (the stage whose export it starts from, or null) and an ``about:`` block: ``summary``,
  ``label`` (the report's name for it, e.g. ``β``), optionally ``label_by_size`` (a size's own name, e.g.
  ``PathVLM-R1`` for r1 at 7b), ``paper_steps`` (the training steps the paper gives, null where it
  gives none) and optionally ``compare_with`` (the stages the report tests this one against, at the same
  size: the paper's paired comparisons).
- A **size** is ``sizes/<name>.yaml`` (``stands_in_for: 7b``: a stand-in model whose report rows are never
  compared with the paper, e.g. ``tiny``), a **budget** ``budgets/<name>.yaml``.
- A **profile** is ``profiles/<name>.yaml`` declaring ``profile: <name>``, ``gpus_per_node``, ``grpo_engine``
  (the engine that trains the ``easyr1:`` section there: ``easyr1`` or ``trl``), ``eval_backend`` (``vllm`` or
  ``hf``, for model selection and ``make eval``), optionally ``torch_threads`` (OMP_NUM_THREADS of the engine
  unless set), ``stand_in_size`` (a profile that runs only a stand-in model, e.g. cpu: ``tiny``; every
  run of the profile is of that size, so no stand-in result lands in a paper-size folder or report row),
  and a ``slurm:`` block for the sbatch scripts.

The ``about:`` block and the profile's own keys (``PROFILE_KEYS``) describe a recipe, they do not configure an
engine: ``tools.recipe.compose`` leaves them out of the composed config (and its hash).

Stages are listed parents first, depth-first, siblings by name (alpha, beta, r1, gamma, delta, epsilon);
sizes, budgets and profiles by name. ``$PATHVLM_RECIPES`` points at another recipes folder
(``tools.common.paths``): a copy with one more stage or profile file needs no code change.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tools.common.errors import UserError
from tools.common.paths import recipes_dir

ABOUT = "about"
SIZE_KEYS = ("stands_in_for",)
PROFILE_KEYS = ("grpo_engine", "eval_backend", "torch_threads", "stand_in_size", "slurm")
GRPO_ENGINES = ("easyr1", "trl")
SLURM_KEYS = ("cpus_per_task", "mem")
_MEM = re.compile(r"^[1-9][0-9]*[KMGT]?$")
EVAL_BACKENDS = ("vllm", "hf")


class RecipeError(UserError, ValueError):
    """A recipe that cannot be read, composed or validated; the message names where and lists each problem."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        super().__init__(f"{where}:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class StageInfo:
    name: str
    engine: str  # the recipe section it fills: "llamafactory" (SFT) or "easyr1" (GRPO)
    parent: str | None  # the stage whose exported model this one starts from; None: the base model
    label: str  # the report's name for it (α, β, ...)
    paper_steps: int | None  # training steps the paper gives (h20x4 profile), None where it gives none
    summary: str
    label_by_size: dict[str, str]
    compare_with: tuple[str, ...] = ()  # the stages the report pairs this one with (A = this stage)

    @property
    def is_grpo(self) -> bool:
        """Trained by GRPO (the ``easyr1:`` section), not SFT."""
        return self.engine == "easyr1"

    def model_label(self, size: str) -> str:
        """``β-7B``; a size's own name where the stage file gives one (``PathVLM-R1``)."""
        return self.label_by_size.get(size) or f"{self.label}-{size.upper()}"


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    gpus_per_node: int
    grpo_engine: str  # "easyr1" or "trl"
    eval_backend: str  # "vllm" or "hf"
    torch_threads: int | None
    stand_in_size: str | None  # the only size this profile runs (a stand-in model), None: any size
    cpus_per_task: int  # slurm.cpus_per_task: a job's CPUs per node
    mem: str  # slurm.mem: a job's memory per node, in sbatch's --mem form (256G)


def load_yaml(path: Path) -> DictConfig:
    """A recipe file as a mapping; errors name the file."""
    if not path.is_file():
        raise RecipeError(str(path), ["file not found"])
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors carry the line number
        raise RecipeError(str(path), [f"not valid YAML: {exc}"]) from exc
    if not isinstance(cfg, DictConfig):
        raise RecipeError(str(path), ["expected a mapping at the top level"])
    return cfg


def load_with_defaults(path: Path, seen: tuple[Path, ...] = ()) -> DictConfig:
    """A recipe file merged over its ``defaults`` (other files of its folder, named without .yaml)."""
    if path in seen:
        raise RecipeError(str(path), ["circular defaults: " + " -> ".join(p.name for p in (*seen, path))])
    cfg = load_yaml(path)
    defaults = cfg.pop("defaults", [])
    if isinstance(defaults, str) or not all(isinstance(d, str) for d in defaults):
        raise RecipeError(str(path), ["`defaults` must be a list of base file names, e.g. [_sft]"])
    bases = [load_with_defaults(path.parent / f"{name}.yaml", (*seen, path)) for name in defaults]
    return OmegaConf.merge(*bases, cfg) if bases else cfg


def _names(kind: str) -> list[str]:
    return sorted(p.stem for p in (recipes_dir() / kind).glob("*.yaml") if not p.name.startswith("_"))


def recipe_file(kind: str, name: str) -> Path:
    """``recipes/<kind>/<name>.yaml`` (kind: stages, sizes, budgets, profiles)."""
    return recipes_dir() / kind / f"{name}.yaml"


def sizes() -> list[str]:
    return _names("sizes")


def stands_in_for(size: str) -> str | None:
    """The paper size a stand-in size (``stands_in_for`` in its file, e.g. ``tiny``) stands in for; None for
    a paper size. A stand-in's report rows are never compared with the paper's numbers."""
    path = recipe_file("sizes", size)
    return load_with_defaults(path).get("stands_in_for") if path.is_file() else None


def budgets() -> list[str]:
    return _names("budgets")


def profiles() -> list[str]:
    return _names("profiles")


def stages() -> dict[str, StageInfo]:
    """Every stage file's declaration, parents first (see the module docstring for the order); read again
    whenever a file of ``recipes/stages/`` changes."""
    folder = recipes_dir() / "stages"
    return dict(_stages(folder, tuple((p.name, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.yaml")))))


@functools.lru_cache(maxsize=8)
def _stages(folder: Path, files: tuple[tuple[str, int], ...]) -> tuple[tuple[str, StageInfo], ...]:
    infos = {name: stage(name) for name in _names("stages")}  # by name

    def below(parent: str | None) -> list[str]:  # depth-first: each stage, then its children
        children = [n for n, i in infos.items() if (i.parent if i.parent in infos else None) == parent]
        return [name for child in children for name in (child, *below(child))]

    ordered = below(None)
    for name, info in infos.items():
        unknown = [other for other in info.compare_with if other not in infos]
        if unknown:
            raise RecipeError(str(recipe_file("stages", name)), [f"{ABOUT}.compare_with: no stage {unknown}"])
    return tuple((name, infos[name]) for name in ordered)


def stage(name: str) -> StageInfo:
    """The declaration of ``stages/<name>.yaml``."""
    path = recipe_file("stages", name)
    cfg = load_with_defaults(path)
    about = cfg.get(ABOUT)
    if not isinstance(about, DictConfig):
        raise RecipeError(str(path), [f"no `{ABOUT}:` block (summary, label, paper_steps)"])
    values = OmegaConf.to_container(about)
    missing = [key for key in ("summary", "label", "paper_steps") if key not in values]
    if missing or "engine" not in cfg or "parent" not in cfg:
        keys = [f"{ABOUT}.{key}" for key in missing] + [k for k in ("engine", "parent") if k not in cfg]
        raise RecipeError(str(path), [f"missing {keys}"])
    steps = values["paper_steps"]
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0):
        raise RecipeError(
            str(path), [f"{ABOUT}.paper_steps is {steps!r}, expected a positive integer or null"]
        )
    compare_with = values.get("compare_with") or []
    if not isinstance(compare_with, list) or not all(isinstance(s, str) for s in compare_with):
        raise RecipeError(str(path), [f"{ABOUT}.compare_with is {compare_with!r}, expected a list of stages"])
    return StageInfo(
        name=name,
        engine=str(cfg["engine"]),
        parent=None if cfg["parent"] is None else str(cfg["parent"]),
        label=str(values["label"]),
        paper_steps=steps,
        summary=str(values["summary"]),
        label_by_size={str(k): str(v) for k, v in (values.get("label_by_size") or {}).items()},
        compare_with=tuple(compare_with),
    )


def profile(name: str) -> ProfileInfo:
    """The declaration of ``profiles/<name>.yaml`` (its defaults included)."""
    path = recipe_file("profiles", name)
    cfg = load_with_defaults(path)
    problems = []
    if cfg.get("profile") != name:
        problems.append(f"profile: {cfg.get('profile')!r}, expected {name!r} (the file's name)")
    for key, allowed in (("grpo_engine", GRPO_ENGINES), ("eval_backend", EVAL_BACKENDS)):
        if cfg.get(key) not in allowed:
            problems.append(f"{key}: {cfg.get(key)!r}, expected one of {list(allowed)}")
    slurm = cfg.get("slurm")
    if not isinstance(slurm, DictConfig):
        problems.append(f"slurm: {slurm!r}, expected a mapping with {list(SLURM_KEYS)}")
        slurm = OmegaConf.create({})
    problems += [
        f"slurm.{key}: unknown key (expected {list(SLURM_KEYS)})" for key in slurm if key not in SLURM_KEYS
    ]
    problems += [f"slurm.{key}: missing" for key in SLURM_KEYS if key not in slurm]
    integers = (
        ("gpus_per_node", cfg.get("gpus_per_node"), 0, False),
        ("torch_threads", cfg.get("torch_threads"), 1, True),
        ("slurm.cpus_per_task", slurm.get("cpus_per_task"), 1, "cpus_per_task" not in slurm),
    )
    for key, value, low, optional in integers:
        if not (optional and value is None) and (
            not isinstance(value, int) or isinstance(value, bool) or value < low
        ):
            problems.append(f"{key}: {value!r}, expected an integer >= {low}")
    if "base_model_build" in cfg:  # retired: no recipe key names a command to run
        problems.append("base_model_build: retired (no recipe key names a command); build the model first")
    stand_in = cfg.get("stand_in_size")
    if stand_in is not None and (stand_in not in sizes() or stands_in_for(stand_in) is None):
        stand_ins = [s for s in sizes() if stands_in_for(s)]
        problems.append(f"stand_in_size: {stand_in!r}, expected a stand-in size ({stand_ins}) or null")
    mem = slurm.get("mem")
    if "mem" in slurm and not (isinstance(mem, str) and _MEM.match(mem)):
        problems.append(f"slurm.mem: {mem!r}, expected sbatch's --mem form such as 256G or 4096M")
    if problems:
        raise RecipeError(str(path), problems)
    return ProfileInfo(
        name=name,
        gpus_per_node=int(cfg["gpus_per_node"]),
        grpo_engine=str(cfg["grpo_engine"]),
        eval_backend=str(cfg["eval_backend"]),
        torch_threads=cfg.get("torch_threads"),
        stand_in_size=stand_in,
        cpus_per_task=int(slurm["cpus_per_task"]),
        mem=str(mem),
    )
