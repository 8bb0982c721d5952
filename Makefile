# `make demo` and `make test` create .venv on first use (Python 3.11), then run.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
DEMO_PARALLEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: sweep 4 ResNet widths x 4 nested subsets of the embedded digits (built as a tfds
# dataset on first use), collect the results table, fit and draw the scaling laws. Run again, it
# reuses the finished runs and only redraws.
demo: $(STAMP)
	$(VENV)/bin/scaling sweep run experiments/demo.py --root runs/demo --parallel $(DEMO_PARALLEL)
	$(VENV)/bin/scaling sweep results --root runs/demo
	$(VENV)/bin/scaling report runs/demo/results.csv --out runs/demo/report
	@echo "demo report: runs/demo/report/report.html"

# House style (pyproject.toml [tool.ruff]): line length, import order, pyflakes, bugbear and friends.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Tests run on 8 virtual CPU devices (tests/conftest.py sets XLA_FLAGS).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs
