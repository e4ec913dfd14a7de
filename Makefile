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
# The sample site: where `make run` serves, and its SQLite file
# (REVY_SAMPLE_DB in the environment; default sample_site/var/db.sqlite3).
SAMPLE_HOST ?= 127.0.0.1
SAMPLE_PORT ?= 8000
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

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
test: $(STAMP) browsers ## Run the whole test suite (SQLite): revy, then the sample site
	@status=0; \
	(set -x; $(PY) -m pytest $(PYTEST_ARGS)) || status=1; \
	(set -x; $(PY) -m pytest --ds=sample_site.settings sample_site/tests \
		$(PYTEST_ARGS)) || status=1; \
	exit $$status

.PHONY: run
run: export DJANGO_SETTINGS_MODULE = sample_site.settings
run: $(STAMP) ## Run the sample site on http://127.0.0.1:8000 (demo data on first run)
	@$(PY) -m django prepare_site --url http://$(SAMPLE_HOST):$(SAMPLE_PORT)
	@exec $(PY) -m uvicorn sample_site.asgi:application \
		--host $(SAMPLE_HOST) --port $(SAMPLE_PORT) --lifespan off

.PHONY: browsers
browsers: ## Install headless Chromium and chromedriver (Debian packages) if missing
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		$(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

.PHONY: test-matrix
test-matrix: ## Run the suite on the oldest and the newest supported Django and asgiref
	$(MAKE) test DJANGO=4.2 ASGIREF=3.6.0
	$(MAKE) test DJANGO=5.2

# Database servers: PostgreSQL on 127.0.0.1:5432 (user postgres) and MariaDB on
# 127.0.0.1:3306 (user root), as tests/settings.py says. Each run creates and
# drops its own test database, named REVY_TEST_DB_NAME (runs side by side
# need different names); by default it is named after the dependency set.
REVY_TEST_DB_NAME ?= test_revy$(subst .,_,$(subst -,_,$(VENV:.venv%=%)))
# These start servers on SQLite files of their own, whatever the database, and
# use no test database: the SQLite runs cover them.
SQLITE_ONLY_TESTS := tests/test_mw_servers.py tests/test_crash.py tests/test_bench_smoke.py
SERVER_DB_ARGS := $(SQLITE_ONLY_TESTS:%=--ignore=%)

.PHONY: test-postgres
test-postgres: $(STAMP) ## Run revy's test suite on PostgreSQL
	REVY_TEST_DATABASE=postgres REVY_TEST_DB_NAME=$(REVY_TEST_DB_NAME) \
		$(PY) -m pytest $(SERVER_DB_ARGS) $(PYTEST_ARGS)

# The same with psycopg 3 binding parameters on the server and preparing
# statements (OPTIONS server_side_binding and prepare_threshold), as a
# deployment may choose for speed.
.PHONY: test-postgres-prepared
test-postgres-prepared: $(STAMP) ## Run revy's test suite on PostgreSQL with server-side binding and prepared statements
	REVY_TEST_DATABASE=postgres REVY_TEST_SERVER_SIDE_BINDING=1 \
		REVY_TEST_DB_NAME=$(REVY_TEST_DB_NAME)_prepared \
		$(PY) -m pytest $(SERVER_DB_ARGS) $(PYTEST_ARGS)

.PHONY: test-mariadb
test-mariadb: $(STAMP) ## Run revy's test suite on MariaDB
	REVY_TEST_DATABASE=mariadb REVY_TEST_DB_NAME=$(REVY_TEST_DB_NAME) \
		$(PY) -m pytest $(SERVER_DB_ARGS) $(PYTEST_ARGS)

# test-all: the two dependency sets of test-matrix, each on SQLite (revy and
# the sample site), PostgreSQL (as configured by default, and with prepared
# statements) and MariaDB (revy). The virtualenvs are built
# first, one at a time; then the six runs share TEST_JOBS jobs (all six run,
# whatever fails), each run's output printed whole when it ends. Their test databases are REVY_TEST_DB_NAME
# followed by the set: test_revy_django4_2 and test_revy_django5_2.
SET_django4.2 := DJANGO=4.2 ASGIREF=3.6.0
SET_django5.2 := DJANGO=5.2
TEST_SETS := django4.2 django5.2
TEST_RUNS := $(foreach set,$(TEST_SETS),$(foreach db,test test-postgres test-postgres-prepared test-mariadb,run/$(db)/$(set)))
TEST_JOBS ?= 3

.PHONY: test-all
test-all: browsers ## Run the suite on SQLite, PostgreSQL and MariaDB, with Django 4.2 and 5.2
	@$(foreach set,$(TEST_SETS),$(MAKE) --no-print-directory venv $(SET_$(set)) &&) true
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) --keep-going --output-sync=target $(TEST_RUNS)

.PHONY: $(TEST_RUNS)
$(TEST_RUNS): run/%:
	@$(MAKE) --no-print-directory $(firstword $(subst /, ,$*)) $(SET_$(lastword $(subst /, ,$*))) \
		REVY_TEST_DB_NAME=$(REVY_TEST_DB_NAME)_$(subst .,_,$(lastword $(subst /, ,$*)))

.PHONY: lint
lint: $(STAMP) ## ruff, mypy (strict) and makemigrations --check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy revy_core revy_mw tests
	$(PY) -m mypy --config-file sample_site/mypy.ini sample_site
	$(PY) -m django makemigrations --check --dry-run --settings=tests.settings
	$(PY) -m django makemigrations --check --dry-run --settings=sample_site.settings

.PHONY: format
format: $(STAMP) ## Apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

.PHONY: clean
clean: ## Remove virtualenvs and caches
	rm -rf .venv .venv-* .mypy_cache .ruff_cache .pytest_cache artifacts

# Benchmarks (bench/): revy side by side with its peers, in their own virtualenv.
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_PEERS := django-simple-history django-reversion django-auditlog \
	django-pghistory django-pgtrigger py-spy
BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml
	@test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e ".[postgres]" $(BENCH_PEERS)
	@touch $(BENCH_STAMP)

.PHONY: bench-venv
bench-venv: $(BENCH_STAMP) ## Create .venv-bench: revy (editable) and the four peers

.PHONY: bench
bench: $(BENCH_STAMP) ## Benchmark revy and its peers on SQLite and PostgreSQL (bench/results/), then history operations at 100,000 deltas
	$(BENCH_PY) -m bench.run $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-operations

# Operating history at scale: 100,000 object deltas, each operation's time per
# 10,000 rows and memory, on SQLite then PostgreSQL (bench/operations.py).
BENCH_OPERATIONS_ARGS ?=

.PHONY: bench-operations
bench-operations: $(BENCH_STAMP) ## History operations (backfill, history, diff, revert, prune, erase) at 100,000 deltas
	$(BENCH_PY) -m bench.operations --database sqlite $(BENCH_OPERATIONS_ARGS)
	$(BENCH_PY) -m bench.operations --database postgres $(BENCH_OPERATIONS_ARGS)

.PHONY: bench-quick
bench-quick: $(STAMP) ## Smoke benchmark under a minute: revy and untracked, SQLite
	$(PY) -m bench.run --quick $(BENCH_ARGS)

.PHONY: bench-scale
bench-scale: $(STAMP) ## History at scale on PostgreSQL: one object's history at 1,000 vs 1,000,000 deltas
	$(PY) -m bench.scale $(BENCH_SCALE_ARGS)

# Soak: the tests marked `soak`, on PostgreSQL (127.0.0.1:5432, user postgres):
# each server under SOAK_REQUESTS requests from 50 clients, crashes under both
# servers (on SQLite files and on PostgreSQL), the time-travel property with
# 500 examples; then the fault, fuzz, authorization and secrets tests on
# PostgreSQL with SOAK_FUZZ_EXAMPLES examples. Fewer requests for a quick
# run: make soak SOAK_REQUESTS=3000.
SOAK_REQUESTS ?= 20000
SOAK_FUZZ_EXAMPLES ?= 50

.PHONY: soak
soak: $(STAMP) ## Long reliability runs on PostgreSQL: servers under load, crashes, fuzzers
	REVY_SOAK_REQUESTS=$(SOAK_REQUESTS) $(PY) -m pytest --ds=tests.soak_settings \
		-m soak tests $(PYTEST_ARGS)
	REVY_FUZZ_EXAMPLES=$(SOAK_FUZZ_EXAMPLES) $(PY) -m pytest --ds=tests.soak_settings \
		tests/test_faults.py tests/test_fuzz.py tests/test_authorization.py \
		tests/test_secrets.py $(PYTEST_ARGS)
