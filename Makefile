# pathvlm-r1: the front door. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# ---------------------------------------------------------------- quoting
# What a user sets (command line or environment) is taken literally: make expands no $(...) in these
# variables, and recipes hand them to the shell as `$(call q,$(X))` (one single-quoted word) or
# `$(call qw,$(X))` (each word quoted), so no backtick, $(...), quote, ; or space in them is evaluated.
USER_VARS := SIZE PROFILE BUDGET SEEDS DATA PATHVLM_DATA PATHMMU_ROOT PATHMMU_ARGS OMNIMEDVQA_ROOT RUN_ARGS \
  EVAL_BACKEND EVAL_ARGS JUDGE_EVAL JUDGE_EVAL_ARGS REPORTS REPORT_ARGS SMOKE_DIR SMOKE_ARGS SBATCH_ARGS \
  CONTROLS BASELINE_TP QWEN_32B GEMINI_MODEL GEMINI_BASE_URL LOCAL_JUDGE PREFLIGHT_DIR
$(foreach v,$(USER_VARS),$(if $(filter command environment,$(firstword $(origin $(v)))),\
  $(eval override $(v) := $$(value $(v)))))
_SAFE := a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z \
  0 1 2 3 4 5 6 7 8 9 - _ . / : = , + @ %
_unsafe = $(if $(2),$(call _unsafe,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
q = $(if $(and $(1),$(if $(call _unsafe,$(1),$(_SAFE)),,safe)),$(1),'$(subst ','\'',$(1))')
qw = $(foreach w,$(1),$(call q,$(w)))

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PATHVLM := $(VENV)/bin/pathvlm
# EasyR1 (GRPO engine) at the pinned commit: vendored snapshot for the cpu env, git for the gpu env.
EASYR1_TARBALL ?= ../shared/vendor/EasyR1-b44b311.tar.gz
EASYR1_REPO ?= https://github.com/hiyouga/EasyR1.git
EASYR1_COMMIT ?= b44b311
# The gpu env installs EasyR1 from this checkout, whose scripts/model_merger.py exports GRPO checkpoints.
EASYR1_HOME ?= .cache/EasyR1
GPU_VENV ?= .venv-gpu

PROFILE ?= h20x4
# A profile that runs only a stand-in model names its size (recipes/profiles/cpu.yaml: stand_in_size: tiny).
PROFILE_FILE = $(file <$(or $(PATHVLM_RECIPES),recipes)/profiles/$(PROFILE).yaml)
STAND_IN_SIZE = $(patsubst stand_in_size:%,%,$(filter stand_in_size:%,$(subst stand_in_size: ,stand_in_size:,$(PROFILE_FILE))))
SIZE ?= $(or $(STAND_IN_SIZE),7b)
# Training budget overlay (recipes/budgets/: paper, fast); SEEDS="42 43 44" trains one replicate per seed.
BUDGET ?= paper
SEEDS ?=
PYTEST_ARGS ?=

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: help setup setup-gpu setup-judge models test lint

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------- environments
setup: $(VENV)/.installed ## create/update the cpu environment in .venv (tests, smoke)

$(VENV)/.installed: pyproject.toml $(EASYR1_TARBALL)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e '.[cpu]'
	$(PIP) install --quiet --disable-pip-version-check --no-deps --force-reinstall $(EASYR1_TARBALL)
	touch $@

# Order matters: flash-attn's setup.py imports wheel, packaging and torch at the top, and --no-build-isolation
# builds it in this venv, so those come first (gpu-prereq, then gpu with torch). Its setup fetches the prebuilt
# wheel for torch 2.8 / CUDA 12 / cp311 from its GitHub release when it can; without that access download
# flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl from
# https://github.com/Dao-AILab/flash-attention/releases/tag/v2.8.3 and pass FLASH_ATTN_WHEEL=<that file>.
FLASH_ATTN_WHEEL ?=
setup-gpu: ## create the gpu environment in .venv-gpu on a cluster node (CUDA, vLLM, flash-attn, EasyR1 at b44b311)
	$(PYTHON) tools/gpu_host_check.py
	test -x $(GPU_VENV)/bin/python || $(PYTHON) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/pip install -e '.[gpu-prereq]'
	$(GPU_VENV)/bin/pip install -e '.[gpu]'
	$(GPU_VENV)/bin/pip install --no-build-isolation $(if $(FLASH_ATTN_WHEEL),'$(FLASH_ATTN_WHEEL)',-e '.[gpu-build]')
	test -d $(EASYR1_HOME)/.git || git clone $(EASYR1_REPO) $(EASYR1_HOME)
	git -C $(EASYR1_HOME) checkout --quiet $(EASYR1_COMMIT)
	$(GPU_VENV)/bin/pip install --no-deps -e $(EASYR1_HOME)

# The served judge (slurm/judge.sbatch) in its own environment: vLLM 0.11, pinned in the gpu environment for
# EasyR1, has a remote-code-execution advisory in its OpenAI server (fixed in 0.14.1), and serving needs none of
# EasyR1's pins. Only vLLM (the `judge` extra) goes there; the job itself runs from the gpu environment.
JUDGE_VENV ?= .venv-judge
setup-judge: ## create the judge-serving environment in .venv-judge (vLLM 0.14.1) for slurm/judge.sbatch
	test -x $(JUDGE_VENV)/bin/python || $(PYTHON) -m venv $(JUDGE_VENV)
	$(JUDGE_VENV)/bin/pip install '.[judge]'

# Login node (compute nodes run offline): the size's base model, r1's judge model when it is self-hosted
# (PATHVLM_JUDGE_BASE_URL / PATHVLM_JUDGE_MODEL), and with LOCAL_JUDGE=1 the model slurm/judge.sbatch serves
# (as `make pipeline LOCAL_JUDGE=1` / slurm/pipeline.sh --local-judge do), into $$HF_HOME; point HF_HOME at a
# folder every node sees.
LOCAL_JUDGE ?=
models: ## login node: download SIZE's base model (+ a self-hosted judge; LOCAL_JUDGE=1: the served one) into $$HF_HOME
	HF_HUB_OFFLINE=0 $(or $(wildcard $(GPU_VENV)/bin/pathvlm),$(PATHVLM)) models --size $(call q,$(SIZE))$(if $(LOCAL_JUDGE), --local-judge)

# ---------------------------------------------------------------- quality
# Without PYTEST_ARGS (as CI runs it), the BESIDE tests run in a second pytest beside the rest, their report after
# the other's: two groups of comparable time, each training with one torch thread, share the 2 cores (the test
# cluster runs one job at a time).
BESIDE := tests/slurm tests/test_runner_training.py tests/test_learning.py
test: setup ## set up, then run every test (slow and SLURM tests included; PYTEST_ARGS="-m 'not slow'" for the fast ones)
	@if [ -z "$(strip $(PYTEST_ARGS))" ]; then \
	  log=$$(mktemp); $(VENV)/bin/pytest $(BESIDE) >$$log 2>&1 & beside=$$!; \
	  rc=0; $(VENV)/bin/pytest $(addprefix --ignore=,$(BESIDE)) || rc=$$?; src=0; wait $$beside || src=$$?; \
	  echo "==== $(BESIDE) (ran beside the tests above) ===="; cat $$log; rm -f $$log; \
	  if [ $$rc -ne 0 ]; then exit $$rc; fi; exit $$src; \
	fi; \
	rc=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests for PYTEST_ARGS='$(PYTEST_ARGS)'"; rc=0; fi; exit $$rc

lint: setup ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# ---------------------------------------------------------------- data
# PathMMU and OmniMedVQA are gated: download them yourself (data/README.md), then point these at them.
DATA ?= $(or $(PATHVLM_DATA),data/generated)
PATHMMU_ARGS ?=  # more `pathvlm data pathmmu` options, e.g. "--val 385" or "--split-unit question"
PATHMMU_ROOT ?=
OMNIMEDVQA_ROOT ?=

.PHONY: data
data: ## convert PathMMU + OmniMedVQA: make data PATHMMU_ROOT=DIR OMNIMEDVQA_ROOT=DIR (into data/generated)
	@if [ -z $(call q,$(PATHMMU_ROOT)) ] || [ -z $(call q,$(OMNIMEDVQA_ROOT)) ]; then \
	  echo "make data needs PATHMMU_ROOT=<folder with data.json and images/>" >&2; \
	  echo "            and OMNIMEDVQA_ROOT=<folder with QA_information/ and Images/>." >&2; \
	  echo "Both datasets are gated and never shipped here: download them yourself as data/README.md explains." >&2; \
	  echo "For a synthetic stand-in: $(PATHVLM) data synth --out DIR --items N" >&2; \
	  exit 2; \
	fi
	@$(MAKE) --no-print-directory setup
	$(PATHVLM) data pathmmu --root $(call q,$(PATHMMU_ROOT)) --out $(call q,$(DATA)/pathmmu) $(call qw,$(PATHMMU_ARGS))
	$(PATHVLM) data omnimedvqa --root $(call q,$(OMNIMEDVQA_ROOT)) --out $(call q,$(DATA)/omnimedvqa)
	$(PATHVLM) data check $(call q,$(DATA)/pathmmu)
	$(PATHVLM) data check $(call q,$(DATA)/omnimedvqa)

# ---------------------------------------------------------------- stages
# `pathvlm run` skips a finished stage whose config is unchanged, refuses a changed one (RUN_ARGS=--force
# retrains it, and every stage this make call runs) and resumes an interrupted one from its last checkpoint.
# Prerequisites follow the stage table: `make r1` runs alpha, beta, r1 in order. Runs go to runs/$(SIZE)/<stage>
# ($$PATHVLM_RUNS overrides). In PROFILE=cpu, r1's judge is the fake server on $$PATHVLM_JUDGE_PORT.
# With SEEDS, each stage trains once per seed (runs/$(SIZE)/<stage>-seedN, from the parent of the same seed).
RUN_ARGS ?=
STAGE_CMD = $(strip $(PATHVLM) run $@ --size $(call q,$(SIZE)) --profile $(call q,$(PROFILE)) \
  --budget $(call q,$(BUDGET)) $(call qw,$(RUN_ARGS)))
STAGE_RUN = $(if $(strip $(SEEDS)),for seed in $(call qw,$(SEEDS)); do $(STAGE_CMD) --seed $$seed || exit $$?; done,$(STAGE_CMD))

.PHONY: alpha beta r1 gamma delta epsilon
alpha: | $(VENV)/.installed ## stage α: SFT of the base model (LLaMA-Factory); SIZE=7b|3b PROFILE=h20x4|a100x8|h100x8|lean|cpu BUDGET=paper|fast SEEDS=...
	$(STAGE_RUN)

beta: alpha ## stage β: GRPO from α, format + accuracy reward (EasyR1; TRL in PROFILE=cpu)
	$(STAGE_RUN)

r1: beta ## PathVLM-R1: GRPO from β, + the judge's cross-modal process reward
	$(STAGE_RUN)

gamma: alpha ## control γ: SFT from α on the rl split
	$(STAGE_RUN)

delta: | $(VENV)/.installed ## control δ: SFT of the base model on the rl split
	$(STAGE_RUN)

epsilon: | $(VENV)/.installed ## control ε: GRPO from the base model, format + accuracy reward
	$(STAGE_RUN)

# ---------------------------------------------------------------- evaluation
# `make eval` evaluates SIZE's finished stages (runs/$(SIZE)/<stage>/model beside DONE) and the base model on
# $(DATA)/pathmmu/eval/test.jsonl and each $(DATA)/{omnimedvqa,pathvqa,mmmu}/eval/*.jsonl present (`pathvlm data
# pathvqa|mmmu` convert the authors' extra benchmarks); finished evaluations are
# skipped, interrupted ones resume. The base model and image limits come from the stages' config.yaml.
# `make report` writes $(REPORTS)/ and logs to W&B (offline by default: `wandb sync $(REPORTS)/wandb/offline-run-*`).
# EVAL_BACKEND (hf|vllm): default, the profile's eval_backend (recipes/profiles/$(PROFILE).yaml).
EVAL_BACKEND ?=
EVAL_BACKEND_ARG = $(if $(EVAL_BACKEND),--backend $(call q,$(EVAL_BACKEND)))
EVAL_ARGS ?=
# With a judge configured (OPENAI_API_KEY or PATHVLM_JUDGE_BASE_URL set, or JUDGE_EVAL=1), `make eval` then grades
# every test output with r1's judge (`pathvlm judge-eval`: judged.jsonl beside items.jsonl). JUDGE_EVAL= turns it off.
JUDGE_EVAL ?= $(if $(or $(OPENAI_API_KEY),$(PATHVLM_JUDGE_BASE_URL)),1,)
JUDGE_EVAL_ARGS ?=
REPORTS ?= reports
REPORT_ARGS ?=

.PHONY: eval report
eval: | $(VENV)/.installed ## evaluate SIZE's finished stages + base model (EVAL_BACKEND=hf|vllm, EVAL_ARGS=...)
	$(strip $(PATHVLM) eval-all --size $(call q,$(SIZE)) --profile $(call q,$(PROFILE)) $(EVAL_BACKEND_ARG) --data-root $(call q,$(DATA)) $(call qw,$(EVAL_ARGS)))
	$(if $(JUDGE_EVAL),$(PATHVLM) judge-eval --size $(call q,$(SIZE)) --profile $(call q,$(PROFILE)) $(call qw,$(JUDGE_EVAL_ARGS)))

# `make baselines SIZE=3b|7b|32b` evaluates the paper's baselines on the test split and the OOD subsets:
# Qwen2.5-VL-$(SIZE)-Instruct (3b/7b: the size's base model as `make eval` evaluates it; 32b: vLLM with tensor
# parallelism over BASELINE_TP GPUs), then GPT-4o when OPENAI_API_KEY is set and Gemini (GEMINI_MODEL through
# Google's OpenAI-compatible endpoint) when GEMINI_API_KEY is set (`--backend openai`, runs/api/<model>/).
# HuatuoGPT-Vision-7B cannot be loaded by an engine we pin: see README.md ("Baselines").
BASELINE_TP ?= 4
QWEN_32B ?= Qwen/Qwen2.5-VL-32B-Instruct
GEMINI_MODEL ?= gemini-1.5-pro
GEMINI_BASE_URL ?= https://generativelanguage.googleapis.com/v1beta/openai/
# Evaluation files by folder and name (names have no spaces), found with DATA's spaces escaped: $(wildcard)
# splits on spaces. OmniMedVQA subsets, and PathVQA / MMMU when converted.
space := $(subst ,, )
BENCHMARK_FILES = $(sort $(foreach b,omnimedvqa pathvqa mmmu,$(addprefix $(b)/eval/,$(notdir $(filter %.jsonl,$(wildcard $(subst $(space),\$(space),$(DATA))/$(b)/eval/*.jsonl))))))
EVAL_DATA_ARGS = --data $(call q,$(DATA)/pathmmu/eval/test.jsonl) $(foreach f,$(BENCHMARK_FILES),--data $(call q,$(DATA)/$(f)))

.PHONY: baselines
baselines: | $(VENV)/.installed ## the paper's baselines: Qwen2.5-VL-$(SIZE) (SIZE=32b: tensor parallel), GPT-4o, Gemini
ifeq ($(SIZE),32b)
	$(PATHVLM) eval --backend vllm --model $(call q,$(QWEN_32B)) --size 32b --tensor-parallel-size $(call q,$(BASELINE_TP)) $(EVAL_DATA_ARGS) $(call qw,$(EVAL_ARGS))
else
	$(strip $(PATHVLM) eval-all --size $(call q,$(SIZE)) --profile $(call q,$(PROFILE)) --base-only $(EVAL_BACKEND_ARG) --data-root $(call q,$(DATA)) $(call qw,$(EVAL_ARGS)))
endif
	$(if $(OPENAI_API_KEY),$(PATHVLM) eval --backend openai --model gpt-4o $(EVAL_DATA_ARGS),@echo "OPENAI_API_KEY not set: GPT-4o skipped")
	$(if $(GEMINI_API_KEY),$(PATHVLM) eval --backend openai --model $(call q,$(GEMINI_MODEL)) --base-url $(call q,$(GEMINI_BASE_URL)) --api-key-env GEMINI_API_KEY $(EVAL_DATA_ARGS),@echo "GEMINI_API_KEY not set: $(GEMINI_MODEL) skipped")

report: | $(VENV)/.installed ## tables 1-3 next to the paper, McNemar tests, plots in reports/; W&B runs
	$(PATHVLM) report --out $(call q,$(REPORTS)) $(call qw,$(REPORT_ARGS))

# ---------------------------------------------------------------- benchmarks
.PHONY: bench-rewards bench-judge
bench-rewards: | $(VENV)/.installed ## time format + accuracy rewards on 100,000 responses (target < 2 s)
	$(PY) benchmarks/bench_rewards.py

bench-judge: | $(VENV)/.installed ## 512 judged rollouts vs the fake judge (200 ms, concurrency 32): 5 % 500s, then none
	$(PY) benchmarks/bench_judge.py --error-rate 0.05
	$(PY) benchmarks/bench_judge.py

# ---------------------------------------------------------------- slurm
# slurm/*.sbatch run the same `pathvlm run` / `pathvlm eval-all` as the targets above (each has --help).
# SBATCH_ARGS go to every sbatch call, e.g. SBATCH_ARGS="--partition=gpu --account=lab".
SBATCH_ARGS ?=
CONTROLS ?=

.PHONY: pipeline test-slurm
pipeline: ## submit alpha -> beta -> r1 -> eval as chained Slurm jobs (CONTROLS=1 adds gamma, delta, epsilon; LOCAL_JUDGE=1 serves r1's judge)
	SIZE=$(call q,$(SIZE)) PROFILE=$(call q,$(PROFILE)) BUDGET=$(call q,$(BUDGET)) SEEDS=$(call q,$(SEEDS)) slurm/pipeline.sh $(if $(CONTROLS),--controls) $(if $(LOCAL_JUDGE),--local-judge) -- $(call qw,$(SBATCH_ARGS))

test-slurm: setup ## only the SLURM tests: a local slurmctld + slurmd (installs slurm-wlm, munge if missing; root)
	$(VENV)/bin/pytest tests/slurm $(PYTEST_ARGS)

# ---------------------------------------------------------------- preflight
# The first command on a new cluster (and on any GPU machine): host, models in $$HF_HOME, W&B, one real judge call,
# LLaMA-Factory SFT for 2 steps (+ save, export), GRPO for 2 steps stopped by SIGUSR1 after its first checkpoint and
# resumed (+ merge), evaluation of 8 items, in the throw-away folder PREFLIGHT_DIR; a table, exit 1 on a failure.
# PROFILE=cpu: the same with the CPU engines, tiny model and fake judge. `make -n preflight` prints the checks (the
# `+` line runs `pathvlm preflight --dry-run` under -n).
PREFLIGHT_DIR ?= preflight
PREFLIGHT_PATHVLM = $(if $(filter cpu,$(PROFILE)),$(PATHVLM),$(or $(wildcard $(GPU_VENV)/bin/pathvlm),$(PATHVLM)))

.PHONY: preflight
preflight: | $(VENV)/.installed ## prove the cluster path in ~15 min: make preflight SIZE=7b PROFILE=h20x4 (cpu: minutes)
	+$(PREFLIGHT_PATHVLM) preflight --size $(call q,$(SIZE)) --profile $(call q,$(PROFILE)) --dir $(call q,$(PREFLIGHT_DIR))$(if $(findstring n,$(firstword -$(MAKEFLAGS))), --dry-run)

# ---------------------------------------------------------------- smoke
# The whole pipeline on CPU with the embedded defaults: tiny offline Qwen2.5-VL, synthetic learnable data in the
# real PathMMU / OmniMedVQA schemas, fake judge on 127.0.0.1. Finished steps are skipped on a re-run.
SMOKE_DIR ?= smoke
SMOKE_ARGS ?=

.PHONY: smoke smoke-clean
smoke: setup ## START HERE: data -> alpha -> beta -> r1 -> eval -> report on CPU in minutes (outputs in smoke/)
	$(PATHVLM) smoke --dir $(call q,$(SMOKE_DIR)) $(call qw,$(SMOKE_ARGS))

smoke-clean: ## remove everything `make smoke` wrote
	rm -rf $(call q,$(SMOKE_DIR))
