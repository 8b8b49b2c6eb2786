# bulksim: `make run` serves every provider on 127.0.0.1:8700; `make test` runs lint and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench bench-peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

install: $(STAMP)

# `make run PORT=8800` serves on another port (BULKSIM_PORT=8800 works too). It gives seed 0
# (or BULKSIM_SEED) explicitly, so the manuals' walkthroughs print the ids they show.
run: $(STAMP)
	$(BIN)/bulksim serve --seed $(or $(BULKSIM_SEED),0)$(if $(PORT), --port $(PORT))

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	scripts/system-packages.sh
	$(BIN)/pytest

# The benchmark drives wrk (installed from Debian's package when missing, as root).
bench: $(STAMP)
	scripts/system-packages.sh bench
	$(BIN)/python -m tests.bench

# WireMock and Prism from the npm registry, into an ignored cache; WireMock runs on Java.
PEERS_CACHE := .cache/bench-peers
PEERS_NPM := wiremock@3.13.2 @stoplight/prism-cli@5.14.2
$(PEERS_CACHE)/.installed:
	mkdir -p $(PEERS_CACHE)
	npm install --prefix $(PEERS_CACHE) --no-audit --no-fund --no-save $(PEERS_NPM)
	touch $@

bench-peers: $(STAMP) $(PEERS_CACHE)/.installed
	scripts/system-packages.sh bench
	$(BIN)/python -m tests.bench --peers

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
