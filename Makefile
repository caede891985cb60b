# mappa-bot: `make demo` runs the product on synthetic data, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DB := sqlite:///demo/mappa.db

.PHONY: demo test bench bench-load lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	rm -rf demo && mkdir -p demo
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa demo-data demo/data --individuals 7000 --years 5 --seed 1
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa import demo/data
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa status all
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa due --days 14 --limit 25
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa demo-day

test: $(BIN)/.installed
	$(BIN)/pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check mappa_core bot tests

clean:
	rm -rf $(VENV) demo *.egg-info

# BENCH_ARGS=--load: a minute of 50 people's mixed commands on each database (bench/LOAD.md).
bench: $(BIN)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-load: $(BIN)/.installed
	$(BIN)/python bench/run.py --load --sizes 7000 --dbs sqlite,postgres $(BENCH_ARGS)
