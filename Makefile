# Shopflow: `make run` and `make test` work on a fresh machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# reinstall when the declared dependencies change
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
PYTEST_ARGS ?=
SIZE ?= S

.PHONY: install run up down status test test-realdata test-profiles test-faults test-browser test-celery lint format backtest bench clean help

help:
	@echo "make run          generate the demo shop and run the nightly DAG through Airflow"
	@echo "make up           start the local Airflow (UI, scheduler, ...); prints the URL and login"
	@echo "make down         stop the local Airflow"
	@echo "make test         lint + the test suite (no real data needed)"
	@echo "make test-realdata  tests on ../shared/data (CI)"
	@echo "make test-profiles  backtest tables per generated shop profile (CI; prints them, keeps bench/.work/profiles.md)"
	@echo "make test-faults    kill -9, full disk, held files, concurrent runs (CI)"
	@echo "make test-browser   the on-call path in the Airflow UI, in headless Chromium (installs it)"
	@echo "make test-celery    the CeleryExecutor deployment end to end (installs Postgres + Redis)"
	@echo "make lint         ruff + sqlfluff"
	@echo "make backtest     print the forecast and recommendation backtests of the warehouse (writes nothing)"
	@echo "make bench SIZE=M benchmark (S, M or L); writes bench/results/<size>.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/shopflow demo

up: install
	$(BIN)/shopflow up

down: install
	$(BIN)/shopflow down

status: install
	$(BIN)/shopflow status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd dbt_project && ../$(BIN)/sqlfluff lint models macros --processes 2

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install lint
	$(BIN)/python -m pytest -m "not realdata and not browser and not celery and not faults and not profiles" $(PYTEST_ARGS)

test-realdata: install
	$(BIN)/python -m pytest -m realdata $(PYTEST_ARGS)

# one small shop per generator profile, built and backtested (model vs every baseline); the
# tables are written to bench/results/profiles.md and printed at the end of the run
test-profiles: install
	$(BIN)/python -m pytest -m profiles tests/bench/test_backtest_profiles.py $(PYTEST_ARGS)

# the fault suite: kill -9 at failpoints, a full tmpfs disk (root only), held files, two runs
test-faults: install
	$(BIN)/python -m pytest -m faults tests/faults $(PYTEST_ARGS)

# Debian's chromium + chromium-driver (apt, idempotent), then tests/browser against a
# deployment the test starts itself; screenshots in tests/browser/screenshots/
test-browser: install
	scripts/install_browser.sh
	$(BIN)/python -m pytest -m browser tests/browser $(PYTEST_ARGS)

# Debian's postgresql + redis-server (apt, idempotent), then tests/celery against a Celery
# deployment (Postgres, Redis, two workers) the test starts itself on a fresh SHOPFLOW_HOME
test-celery: install
	scripts/install_services.sh
	$(BIN)/python -m pytest -m celery tests/celery $(PYTEST_ARGS)

backtest: install
	$(BIN)/shopflow backtest forecast
	$(BIN)/shopflow backtest recommend

# benchmark: make bench [SIZE=S|M|L]; writes bench/results/$(SIZE).md
bench: install
	$(BIN)/python -m bench.run --size $(SIZE) --airflow

# stop the local Airflow first: its processes write under .shopflow
clean:
	-test -x $(BIN)/shopflow && $(BIN)/shopflow down
	rm -rf .shopflow dbt_project/target dbt_project/logs
