# kiln — one entry point for developers and CI. Everything the project needs is installed here.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS_DIR := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS_DIR)/bin/uv)
MYPY_PACKAGES := -p kiln_contracts -p kiln_common -p kiln_storage -p kiln_safety -p kiln_gateway -p kiln_pipeline -p kiln_media -p kiln_export -p comfyui_sim -p llm_sim -p kiln_devstack
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(TOOLS_DIR)/bin/uv:
	python3 -m venv $(TOOLS_DIR)
	$(TOOLS_DIR)/bin/pip install --quiet --disable-pip-version-check uv

.PHONY: install
install: $(if $(shell command -v uv 2>/dev/null),,$(TOOLS_DIR)/bin/uv) ## Install uv (if missing) and every dependency, from the lock file
	$(UV) sync --frozen --all-packages
	@# The export tests check archives with `unzip -t`, as researchers' tools will.
	@command -v unzip >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq unzip >/dev/null; } || echo "warning: unzip missing (apt-get install unzip)"
	@# The browser tests drive Debian's Chromium (a browser downloaded by `playwright install` fails here).
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null; } || echo "warning: chromium missing (apt-get install chromium); the browser tests will skip"

.PHONY: dev
dev: install ## Start the whole system in the foreground (gateway on :$${KILN_GATEWAY_PORT:-8080})
	$(UV) run --frozen python -m kiln_devstack

.PHONY: lint
lint: install ## ruff and strict mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy $(MYPY_PACKAGES)

.PHONY: test
test: lint ## Install, lint, and run every test tier (unit, integration, containers)
	$(UV) run --frozen pytest $(PYTEST_ARGS)

.PHONY: chaos
chaos: install ## The chaos suite at full size: 200 concurrent runs per scenario, figures printed
	KILN_CHAOS_RUNS=200 $(UV) run --frozen pytest tests/chaos -s -q $(PYTEST_ARGS)

.PHONY: unit
unit: install ## Unit tests only
	$(UV) run --frozen pytest -m "not integration and not containers" $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove local state (var/) and caches
	rm -rf var .pytest_cache .mypy_cache .ruff_cache test-output

.PHONY: bench-deps
bench-deps: ## Install wrk and nginx (Debian packages) for bench/serve.py; not needed by make test
	@if command -v wrk >/dev/null && command -v nginx >/dev/null; then echo "wrk and nginx are installed"; \
	else $(if $(shell command -v sudo 2>/dev/null),sudo ,)apt-get install -y wrk nginx; fi
