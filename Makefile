# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, start the controller on the demo site (simulated devices)
#   make test   create .venv, install, run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make run CONFIG=path/to/site.toml ARGS="--http-port 9400": another site file, more options.
CONFIG ?= config/demo.toml
ARGS ?=

.PHONY: run run-city test lint bench simulate docs clean

$(STAMP): pyproject.toml .ci/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "Python 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c .ci/constraints.txt -e '.[dev,world]'
	@touch $@

run: $(STAMP)
	$(BIN)/vpp run --config $(CONFIG) $(ARGS)

# Broker (Mosquitto), database (PostgreSQL), city coordinator and three district agents on
# loopback, each district the demo site on its own simulators; see docs/city.md.
run-city: $(STAMP)
	$(BIN)/vpp city-demo --config $(CONFIG) $(ARGS)

simulate: $(STAMP)
	$(BIN)/vpp simulate --config $(CONFIG) $(ARGS)

# One worker per core (pytest-xdist); the tests sharing the replayed sample days stay together.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# docs/site-reference.md from the site schema (vpp/core/site.py); a test fails when it is stale.
docs: $(STAMP)
	$(BIN)/python -m vpp.core.reference --out docs/site-reference.md

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
