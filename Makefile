# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run up stack test lint bench lock clean

# The virtual environment, installed exactly from the lock file, then alcance itself.
$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(INSTALLED)

# The pipeline end to end on the embedded default, until every source is exhausted and processed,
# then the indicators it computed.
run: $(INSTALLED)
	$(BIN)/alcance run --until-idle
	$(BIN)/alcance indicators --json --indicator CVF-01 --period month --by country

# The pipeline kept running until Ctrl-C or SIGTERM.
up: $(INSTALLED)
	$(BIN)/alcance run

stack: $(INSTALLED)
	$(BIN)/alcance stack

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole test suite: static checks, then every test against the real local broker and PostgreSQL.
test: lint
	$(BIN)/pytest

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.xapi_pull
	$(BIN)/python -m benchmarks.processors

# Refresh the lock file from the current environment (after changing pyproject.toml).
lock: $(INSTALLED)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^alcance' > requirements.lock

clean:
	rm -rf $(VENV) .alcance .pytest_cache .mypy_cache .ruff_cache
