# bukva — `make help` lists every target. `make up` runs it, `make test` tests it.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.ONESHELL:

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
ENV_STAMP := $(VENV)/.bukva-env
export PYTHONUNBUFFERED := 1
# Stage commands in dvc.yaml call `python`: make it the environment's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

$(ENV_STAMP): requirements.lock pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh
	touch $@

.PHONY: env
env: $(ENV_STAMP) ## Create or update the Python environment (.venv) from the lock file

.PHONY: lock
lock: ## Re-resolve dependencies into requirements.lock (needs PyPI; uv resolves in seconds)
	uv pip compile pyproject.toml --all-extras --find-links /opt/wheels --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

.PHONY: repro
repro: $(ENV_STAMP) ## Run the DVC pipeline (ingest -> ... -> evaluate); a no-op when nothing changed
	$(BIN)/dvc repro

.PHONY: test
# Workers for `make test`: most tests wait on servers and subprocesses, so more workers than
# cores pay off (tests/conftest.py keeps each shared server stack on one worker).
TEST_WORKERS ?= 4
test: $(ENV_STAMP) ## Run every test tier (unit, data, integration, browser, k8s) on parallel workers
	scripts/bootstrap.sh --system
	scripts/get-helm.sh >/dev/null && scripts/get-helm.sh kubectl >/dev/null
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: $(ENV_STAMP) ## Run the fast tests: no data set, trained model, server stack, browser or cluster check
	$(BIN)/pytest -m "not integration and not browser and not k8s and not bench and not data and not model"

.PHONY: lint
lint: $(ENV_STAMP) ## Lint and format-check with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: $(ENV_STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: up
# `make cluster up` (mk/cluster.mk) is a cluster command: there `up` is only its second word.
ifneq (cluster,$(firstword $(MAKECMDGOALS)))
up: $(ENV_STAMP) ## Train if there is no champion yet, then serve it with the app and Prometheus (Ctrl-C stops all)
	# A champion in the registry, whatever happened to it (launch/champion.py).
	$(PY) -m launch.champion || exit 1
	$(BIN)/dvc metrics show
	# One launcher runs every process (launch/serve.py): Ctrl-C stops them all within 5 s.
	exec $(PY) -m launch.serve --app --prometheus $(SERVE_ARGS)
else
up:
	@:
endif

.PHONY: clean
clean: ## Remove local run state (keeps data, models and the environment)
	rm -rf run/ .pytest_cache .ruff_cache

# Component targets live in mk/*.mk (serving, services, cluster, ...).
-include mk/*.mk
