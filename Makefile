# `make demo` and `make test` create .venv on first use (Python 3.11) with the tested baseline of jax,
# flax, optax and orbax (constraints/ci-baseline.txt), then run. `make test-newest` creates .venv-newest
# with the newest releases pyproject.toml's ranges allow (Python 3.12 or newer: jax 0.11 and later need it;
# `rm -rf .venv-newest` to take releases published since it was built).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BASELINE := constraints/ci-baseline.txt
NEWEST_VENV := .venv-newest
NEWEST_STAMP := $(NEWEST_VENV)/.installed
# python3.12 (or 3.13) on the PATH, else pyenv's latest installed one
NEWEST_PYTHON ?= $(shell for v in 3.12 3.13; do \
	p=$$(command -v python$$v) && $$p -c '' 2>/dev/null && { echo $$p; exit; }; \
	p=$$(pyenv root 2>/dev/null)/versions/$$(pyenv latest $$v 2>/dev/null)/bin/python$$v && [ -x $$p ] && { echo $$p; exit; }; \
	done)
export TF_CPP_MIN_LOG_LEVEL := 3
DEMO_PARALLEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test test-newest lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml $(BASELINE)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c $(BASELINE) -e '.[dev]'
	touch $(STAMP)

$(NEWEST_STAMP): pyproject.toml
	@test -n "$(NEWEST_PYTHON)" || { echo "error: make test-newest needs Python 3.12 or newer (jax 0.11 and later \
	require it) and found none: install one, or pass NEWEST_PYTHON=/path/to/python3.12" >&2; exit 2; }
	$(NEWEST_PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	touch $(NEWEST_STAMP)

# The main job, a small scaling study on the embedded digits (built as a tfds dataset on first use):
# 37 cosine runs, ResNet-10s at 4 compute budgets (1e9 to 1e10 training FLOPs), each budget a window of
# 5-8 widths around its optimum (IsoFLOP), and a data axis (4 widths x 3 nested subsets at 1e10);
# collect the sweep's results table, fit and draw the scaling laws. Run again, it reuses the finished runs
# and only redraws.
demo: $(STAMP)
	$(VENV)/bin/scaling sweep run experiments/demo.py --root runs/demo --parallel $(DEMO_PARALLEL)
	$(VENV)/bin/scaling sweep results --root runs/demo experiments/demo.py
	$(VENV)/bin/scaling report runs/demo/results.csv --out runs/demo/report
	@echo "demo report: runs/demo/report/report.html"

# House style (pyproject.toml [tool.ruff]): line length, import order, pyflakes, bugbear and friends.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Tests run on 8 virtual CPU devices (tests/conftest.py sets XLA_FLAGS). Three workers on 2 cores: many tests wait on
# subprocesses (Slurm jobs, two-process runs, the CLI), and a third worker keeps the cores busy meanwhile.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 3 --dist loadfile

# The newest jax the ranges allow, on a short subset: the model tests and the benchmark suite's smoke run.
test-newest: $(NEWEST_STAMP)
	$(NEWEST_VENV)/bin/python -c 'import flax, jax; print(f"newest: jax {jax.__version__}, flax {flax.__version__}")'
	$(NEWEST_VENV)/bin/python -m pytest -q -n 2 tests/test_models.py
	$(NEWEST_VENV)/bin/scaling bench suite --smoke --out $(NEWEST_VENV)/bench-smoke.json

clean:
	rm -rf $(VENV) $(NEWEST_VENV) runs
