# `make demo` and `make test` create .venv on first use (Python 3.11), then run.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: a small ResNet trained on the embedded digits (built as a tfds dataset on first use).
demo: $(STAMP)
	rm -rf runs/demo
	$(VENV)/bin/scaling train --config configs/resnet.py:width=16,depth=10 --workdir runs/demo

# Tests run on 8 virtual CPU devices (tests/conftest.py sets XLA_FLAGS).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs
