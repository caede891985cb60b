# mappa-bot: `make demo` runs the product on synthetic data, `make test` runs the suite.
# Both install exactly what requirements-test.lock pins (every package, with its hashes);
# `make lock` refreshes the locks from pyproject.toml's ranges (see the README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DB := sqlite:///demo/mappa.db
LOCK_VENV ?= .venv-lock
# LOCK_ARGS: e.g. --upgrade (everything to the newest the ranges allow) or --upgrade-package pandas
LOCK_ARGS ?=
PIP_COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)

.PHONY: demo test test-fast test-scale bench bench-load lint clean lock

# Re-installed whenever a lock or pyproject.toml changes. setuptools comes from the lock too
# (hence --no-build-isolation); `pip check` fails if pyproject.toml asks for a package the
# lock does not pin: run `make lock`.
$(BIN)/.installed: requirements-test.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check || { echo "the lock does not satisfy pyproject.toml: run make lock" >&2; exit 1; }
	touch $@

# A synthetic Scotland (ten MAPPA areas, 7,000 individuals, five years up to today), its
# status, what is due, its quarterly pack and a simulated working day; then what to try next.
demo: $(BIN)/.installed
	rm -rf demo && mkdir -p demo
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa demo-data demo/data --individuals 7000 --years 5 --seed 1
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa import demo/data
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa status all
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa due --days 14 --limit 25
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa report quarterly --out demo/pack.html
	MAPPA_DATABASE_URL=$(DEMO_DB) $(BIN)/mappa demo-day
	@day=$$($(BIN)/python -c "import datetime as d; from mappa_core.rules.calendar import WorkingCalendar as W; t = d.date.today(); print(t if W().is_working_day(t) else W().add_working_days(t, 1))"); \
	printf '%s\n' "" "What to try next" "" \
	"  export MAPPA_DATABASE_URL=$(DEMO_DB)      # the demo's database, for the commands below" \
	"" \
	"  The SOG's quarterly pack is demo/pack.html: open it in a browser (xdg-open demo/pack.html," \
	"  or open demo/pack.html on a Mac). One area's (--period YYYY-YY-QN for another quarter):" \
	"    $(BIN)/mappa report quarterly --area Grampian --out demo/grampian.html" \
	"" \
	"  Every Slack message and email of a morning, as each reader sees it (nothing is sent):" \
	"    $(BIN)/mappa jobs run digest --as-of $$day --dry-run        # chairs' digests, agencies' chasers" \
	"    $(BIN)/mappa jobs run escalations --as-of $$day --dry-run   # what reaches each SOG chair" \
	"  A simulated working day with more messages in full (on a copy; email to a local server):" \
	"    $(BIN)/mappa demo-day --as-of $$day --show 10" \
	"" \
	"  One area, one chair:  $(BIN)/mappa status all --area Glasgow;  $(BIN)/mappa due --chair glasgow-chair-1" \
	"  One area's data alone: $(BIN)/mappa demo-data DIR --areas Grampian --individuals 750" \
	"" \
	"  What each person receives and can do: docs/user-guide.md. Running it for real (Slack, email," \
	"  Teams, the schedule, the database): docs/operator-guide.md. The CSV files: docs/data-contract.md."

test: $(BIN)/.installed
	$(BIN)/pytest -q -m "not scale"

# The loop for a developer changing a rule (about a minute): the core's tests (rules, storage,
# core), the check that keeps the rules pure and what people read of the rules' answers, on
# SQLite alone, without servers, processes, Chromium or the slow tests (docs/architecture.md,
# Tests). `make test` remains the whole suite.
FAST_TESTS := tests/rules tests/storage tests/core tests/architecture \
	tests/e2e/test_grampian.py tests/e2e/test_what_people_read.py
test-fast: $(BIN)/.installed
	$(BIN)/pytest -q $(FAST_TESTS) --durations=5 \
		-m "not postgres and not http and not process and not browser and not slow and not scale"

# The tests at 100,000 individuals (minutes each); CI runs them after `make test`.
test-scale: $(BIN)/.installed
	$(BIN)/pytest -q -m scale

lint: $(BIN)/.installed
	$(BIN)/ruff check mappa_core bot tests

# requirements-test.lock first, then requirements.lock constrained by it, so the two pin
# the same release of every package they share (tests/e2e/test_wheel.py checks it).
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet 'pip-tools>=7.4,<8'
	$(PIP_COMPILE) --extra test --all-build-deps -o requirements-test.lock pyproject.toml
	$(PIP_COMPILE) -c requirements-test.lock -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) $(LOCK_VENV) demo *.egg-info build dist

# BENCH_ARGS=--load: a minute of 50 people's mixed commands on each database (bench/LOAD.md).
bench: $(BIN)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-load: $(BIN)/.installed
	$(BIN)/python bench/run.py --load --sizes 7000 --dbs sqlite,postgres $(BENCH_ARGS)
