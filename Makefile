# iizrisk — two commands: `make demo` and `make test`. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-output

.PHONY: demo test lint bench venv clean help

help:
	@echo "make demo   set up .venv and run the nightly job on a synthetic canton"
	@echo "make test   set up .venv with dev extras and run ruff and every test (notebooks included)"
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

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache build dist src/*.egg-info

# docs/summary.png: the demo's HTML summary rendered by headless Chromium (Debian: apt-get install chromium);
# without a demo run in $(DEMO_OUT) a small demo canton is built first
.PHONY: screenshot
screenshot: $(STAMP)
	$(PY) scripts/screenshot.py --run $(DEMO_OUT)/runs/latest --out docs/summary.png
