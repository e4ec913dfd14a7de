# revy: development commands. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
# A dependency set: DJANGO and ASGIREF pin versions (empty: the newest).
DJANGO ?=
ASGIREF ?=
VENV ?= .venv$(if $(DJANGO),-django$(DJANGO))$(if $(ASGIREF),-asgiref$(ASGIREF))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PINS := $(if $(DJANGO),"Django==$(DJANGO).*") $(if $(ASGIREF),"asgiref==$(ASGIREF)")
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" $(PINS)
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create or refresh the virtualenv

.PHONY: test
test: $(STAMP) ## Run the whole test suite (SQLite)
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-matrix
test-matrix: ## Run the suite on the oldest and the newest supported Django and asgiref
	$(MAKE) test DJANGO=4.2 ASGIREF=3.6.0
	$(MAKE) test DJANGO=5.2

.PHONY: lint
lint: $(STAMP) ## ruff, mypy (strict) and makemigrations --check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy revy_core revy_mw tests
	$(PY) -m django makemigrations --check --dry-run --settings=tests.settings

.PHONY: format
format: $(STAMP) ## Apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

.PHONY: clean
clean: ## Remove virtualenvs and caches
	rm -rf .venv .venv-* .mypy_cache .ruff_cache .pytest_cache artifacts
