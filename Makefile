# pathvlm-r1: the front door. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PATHVLM := $(VENV)/bin/pathvlm
# EasyR1 (GRPO engine) at the pinned commit: vendored snapshot for the cpu env, git for the gpu env.
EASYR1_TARBALL ?= ../shared/vendor/EasyR1-b44b311.tar.gz
EASYR1_GIT ?= git+https://github.com/hiyouga/EasyR1.git@b44b311
GPU_VENV ?= .venv-gpu

SIZE ?= 7b
PROFILE ?= h20x4
PYTEST_ARGS ?=

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: help setup setup-gpu test lint

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------- environments
setup: $(VENV)/.installed ## create/update the cpu environment in .venv (tests, smoke)

$(VENV)/.installed: pyproject.toml $(EASYR1_TARBALL)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e '.[cpu]'
	$(PIP) install --quiet --disable-pip-version-check --no-deps --force-reinstall $(EASYR1_TARBALL)
	touch $@

setup-gpu: ## create the gpu environment in .venv-gpu on a cluster node (CUDA, vLLM, flash-attn, EasyR1 from git)
	test -x $(GPU_VENV)/bin/python || $(PYTHON) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/pip install -e '.[gpu]'
	$(GPU_VENV)/bin/pip install --no-build-isolation -e '.[gpu-build]'
	$(GPU_VENV)/bin/pip install --no-deps '$(EASYR1_GIT)'

# ---------------------------------------------------------------- quality
test: setup ## set up, then run every test (slow and SLURM tests included; PYTEST_ARGS="-m 'not slow'" for the fast ones)
	@rc=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests for PYTEST_ARGS='$(PYTEST_ARGS)'"; rc=0; fi; exit $$rc

lint: setup ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
