# Two commands for a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast lint bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,fast,dask,plot]'
	touch $@

## Install, then run the offline demo (local exchange -> recorder -> live entries -> replay).
demo: $(VENV)/.installed
	$(BIN)/acts demo

## Install, start the Mongo-wire test server, run every test but the soak.
test: $(VENV)/.installed
	bash .ci/test.sh

## The quick inner loop: no slow or Mongo tests.
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not slow and not mongo and not soak"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy acts
	$(BIN)/lint-imports

## Benchmarks: data cached in ACTS_BENCH_DIR (default ~/.cache/acts-bench), results.json there too.
bench: $(VENV)/.installed
	$(BIN)/python -m bench

## The same rows on smaller data, in under 3 minutes on a quiet 2-core machine.
bench-quick: $(VENV)/.installed
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
