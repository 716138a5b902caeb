# unionbot — `make run` starts the service, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
CONFIG ?= config.example.toml
# PostgreSQL for the test suite; .ci/run starts the local server when it is down.
export UNIONBOT_TEST_PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

.PHONY: setup run test pytest lint format bench fuzz clean postgres

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: setup
	$(BIN)/unionbot db upgrade --config $(CONFIG)
	$(BIN)/unionbot serve --config $(CONFIG)

test: setup postgres lint pytest

pytest: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

postgres:
	@bash .ci/postgres

bench: setup
	$(BIN)/python -m tests.bench

# The fuzz tests of `make test`, with many more examples (a few minutes per thousand).
FUZZ_EXAMPLES ?= 3000
fuzz: setup postgres
	UNIONBOT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py

clean:
	rm -rf $(VENV) var/*.db var/*.db-* .pytest_cache .mypy_cache .ruff_cache .hypothesis
