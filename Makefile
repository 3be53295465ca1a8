# Two commands work on a machine with only python3 and make: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgresql bench bench-quick teams-package synapse clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py

# Synapse (the Matrix tests' homeserver) in its own venv, .venv-synapse/, once (~40 s; then a
# stamp check). Outside CI a failed install is not fatal: the Matrix tests skip with the reason.
synapse: $(STAMP)
	$(PY) -m tests.matrix.homeserver install || test "$$CI" != true

test: $(STAMP) synapse
	$(PY) -m pytest --db=sqlite
	$(PY) -m pytest --db=postgresql --pg-url=$(PG_URL)

test-sqlite: $(STAMP) synapse
	$(PY) -m pytest --db=sqlite

test-postgresql: $(STAMP) synapse
	$(PY) -m pytest --db=postgresql --pg-url=$(PG_URL)

bench: $(STAMP) synapse
	$(PY) -m bench

bench-quick: $(STAMP) synapse
	BENCH_PEOPLE=10000 $(PY) -m bench

teams-package: $(STAMP)
	$(PY) -m adapters.teams.package

clean:
	rm -rf $(VENV) .venv-synapse build *.egg-info
