# Two commands do everything on a fresh machine: `make run` and `make test`.
# Prerequisites: Python 3.11+, a JDK or JRE 17+ and Maven 3.6.3+ (for the local Apache Kafka broker).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run up serve stack test lint bench lock clean broker

# The local Apache Kafka broker's jars, fetched once from Maven Central into the per-user cache
# (ALCANCE_CACHE_DIR moves it); a no-op when they are there already.
broker: $(INSTALLED)
	$(BIN)/alcance broker fetch

# The virtual environment, installed exactly from the lock file, then alcance itself.
$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(INSTALLED)

# The pipeline end to end on the embedded default, until every source is exhausted and processed,
# then the indicators it computed.
run: broker
	$(BIN)/alcance run --until-idle
	$(BIN)/alcance indicators --json --indicator CVF-01 --period month --by country

# The pipeline kept running until Ctrl-C or SIGTERM, with the dashboard: its address and a one-time
# login link are printed when it starts.
up: broker
	$(BIN)/alcance run

# The dashboard and query API alone, over the store of the state directory (or a running `make up`).
serve: $(INSTALLED)
	$(BIN)/alcance serve

stack: broker
	$(BIN)/alcance stack

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole test suite: static checks, then every test against the real local broker and PostgreSQL.
test: lint broker
	$(BIN)/pytest

bench: broker
	$(BIN)/python -m benchmarks.xapi_pull
	$(BIN)/python -m benchmarks.processors
	$(BIN)/python -m benchmarks.web

# Refresh the lock file from the current environment (after changing pyproject.toml).
lock: $(INSTALLED)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^alcance' > requirements.lock

clean:
	rm -rf $(VENV) .alcance .pytest_cache .mypy_cache .ruff_cache
