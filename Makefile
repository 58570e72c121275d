# Two entry points for a fresh machine: `make demo` and `make test`.
# The virtual environment is (re)built only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The CPU build of PyTorch; an unpinned `torch` would resolve to a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test test-slow browser lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)" numpy -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/ganforge demo --out runs/demo

test: $(VENV)/.installed browser
	$(PY) -m pytest

# The report's browser test renders report.html in Debian's headless Chromium. Installed when
# missing and possible (root with apt); without it that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the browser test will skip"; }

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
