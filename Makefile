# Everything runs from a local virtual environment that `make` creates from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast bench lint setup clean snapshots fuzz core

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,dask,plot]'
	touch $(STAMP)

setup: $(STAMP) core

# The optional compiled core (docs/performance.md): mypyc builds of the simulator's hot modules in
# build/core/, rebuilt when one of their sources changed; without a C compiler (or when the build
# fails) one line says so and everything runs on the pure-Python core, with the same results.
# PGTABLE_EXPLORER_PURE=1 forces the pure core at run time.
core: $(STAMP)
	@$(BIN)/python -m explorer.compiled_build --if-stale

run: $(STAMP) core
	$(BIN)/pgtable-explorer

# The suite runs on two processes (pytest-xdist) where the machine has two cores or more: about
# half the wall time (3.5 min against 6 on the 2-core development machine); TEST_WORKERS=0 runs it
# in this process alone (a debugger, -x), TEST_WORKERS=N on N.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1); \
	[ "$$n" -ge 2 ] 2>/dev/null && echo 2 || echo 0)
test: $(STAMP) core
	PGTABLE_EXPLORER_NO_ENTRYPOINTS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The unit layer only (no Pilot, no child processes, no package builds): seconds, while editing.
test-fast: $(STAMP)
	PGTABLE_EXPLORER_NO_ENTRYPOINTS=1 $(BIN)/python -m pytest -q -m unit

# Rewrite the TUI's snapshot baselines (tests/snapshots/*.svg) from the screens as they are now;
# look at the changed files (git diff, or open them in a browser) before committing them.
snapshots: $(STAMP)
	UPDATE_SNAPSHOTS=1 PGTABLE_EXPLORER_NO_ENTRYPOINTS=1 $(BIN)/python -m pytest -q tests/test_tui_snapshots.py

# The property tests of tests/test_fuzz.py with many more examples (PGTABLE_FUZZ_EXAMPLES per test,
# default 25000: 100,000 inputs in all); the statistics at the end say how many ran, and with
# PGTABLE_FUZZ_PROGRESS=FILE a line per 1000 inputs goes to FILE as they run. FUZZ_ARGS="-k raw" picks tests.
fuzz: $(STAMP)
	PGTABLE_EXPLORER_NO_ENTRYPOINTS=1 PGTABLE_FUZZ_EXAMPLES=$${PGTABLE_FUZZ_EXAMPLES:-25000} \
		$(BIN)/python -m pytest -q tests/test_fuzz.py --hypothesis-show-statistics $(FUZZ_ARGS)

bench: $(STAMP) core
	$(BIN)/python -m tests.benchmarks

lint: $(STAMP)
	$(BIN)/ruff check explorer plugins tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

clean:
	rm -rf $(VENV) dist build *.egg-info bench.json
