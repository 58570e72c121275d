# Two entry points for a fresh machine: `make demo` and `make test`.
# The virtual environment is (re)built only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The CPU build of PyTorch; an unpinned `torch` would resolve to a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test test-slow bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)" numpy -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/ganforge demo --out runs/demo

test: $(VENV)/.installed
	$(PY) -m pytest

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
