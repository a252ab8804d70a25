# iizrisk — two commands: `make demo` and `make test`. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-output

.PHONY: demo test lint typecheck floor bench venv clean help

help:
	@echo "make demo   set up .venv and run the nightly job on a synthetic canton"
	@echo "make test   set up .venv with dev extras and run ruff, mypy and every test (notebooks included), then make floor"
	@echo "make typecheck  mypy src (settings in pyproject.toml [tool.mypy])"
	@echo "make floor  the declared minimum versions (ci/constraints-floor.txt) in .venv-floor: core tests and a small nightly run"
	@echo "make bench  run the benchmark harness (benchmarks/run.py)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "iizrisk needs Python >= 3.11, found " + sys.version.split()[0] + "; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/iizrisk demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

test: lint typecheck
	$(PY) -m pytest
	$(MAKE) --no-print-directory floor

# The dependency floor: .venv-floor holds exactly the minimum versions that pyproject.toml declares
# (ci/constraints-floor.txt pins them and everything they pull in; tests/test_floor.py checks the pins
# equal pyproject's floors). `make floor` runs the core tests there (the slowest few are left to the
# main run) and a small synthetic nightly run that must publish non-empty worklists. The pinned
# wheels exist for Python 3.11 and 3.12 only: with another FLOOR_PYTHON the check is skipped with a
# message, unless FLOOR_REQUIRED=1 (CI sets it), which makes a skip an error.
FLOOR_PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo $(PYTHON))
FLOOR_VENV   := .venv-floor
FLOOR_PY     := $(FLOOR_VENV)/bin/python
FLOOR_STAMP  := $(FLOOR_VENV)/.installed
FLOOR_PINS   := ci/constraints-floor.txt
FLOOR_TESTS  := tests/test_io.py tests/test_spells.py tests/test_flags.py tests/test_features.py \
                tests/test_pseudonym.py tests/test_worklist.py tests/test_batch.py tests/test_model.py \
                tests/test_explain.py
FLOOR_SKIP   := not equal_reference and not nothing_after_as_of and not boosting_beats_baselines

$(FLOOR_STAMP): pyproject.toml $(FLOOR_PINS)
	rm -rf $(FLOOR_VENV)
	$(FLOOR_PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_PY) -m pip install --quiet --only-binary=:all: -c $(FLOOR_PINS) -e . pytest hypothesis
	@touch $(FLOOR_STAMP)

floor:
	@if $(FLOOR_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null; then \
	  $(MAKE) --no-print-directory floor-run; \
	elif [ -n "$(FLOOR_REQUIRED)" ]; then \
	  echo "make floor: needs Python 3.11 or 3.12 (FLOOR_PYTHON=$(FLOOR_PYTHON) is not); set FLOOR_PYTHON" >&2; exit 1; \
	else \
	  echo "make floor: SKIPPED: the floor versions need Python 3.11 or 3.12; FLOOR_PYTHON=$(FLOOR_PYTHON) is not"; \
	fi

.PHONY: floor-run
floor-run: $(FLOOR_STAMP)
	$(FLOOR_PY) ci/floor_smoke.py $(FLOOR_PINS)
	$(FLOOR_PY) -m pytest -q -p no:cacheprovider -m "not slow" -k "$(FLOOR_SKIP)" $(FLOOR_TESTS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(FLOOR_VENV) $(DEMO_OUT) .pytest_cache .ruff_cache build dist src/*.egg-info

# docs/summary.png: the demo's HTML summary rendered by headless Chromium (Debian: apt-get install chromium);
# without a demo run in $(DEMO_OUT) a small demo canton is built first
.PHONY: screenshot
screenshot: $(STAMP)
	$(PY) scripts/screenshot.py --run $(DEMO_OUT)/runs/latest --out docs/summary.png
