# Two commands work on a machine with only python3 and make: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgresql bench bench-quick teams-package clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py

test: $(STAMP)
	$(PY) -m pytest --db=sqlite
	$(PY) -m pytest --db=postgresql --pg-url=$(PG_URL)

test-sqlite: $(STAMP)
	$(PY) -m pytest --db=sqlite

test-postgresql: $(STAMP)
	$(PY) -m pytest --db=postgresql --pg-url=$(PG_URL)

bench: $(STAMP)
	$(PY) -m bench

bench-quick: $(STAMP)
	BENCH_PEOPLE=10000 $(PY) -m bench

teams-package: $(STAMP)
	$(PY) -m adapters.teams.package

clean:
	rm -rf $(VENV) build *.egg-info
