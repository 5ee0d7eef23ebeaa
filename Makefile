# The whole developer interface. Every target works on a fresh clone with only python3:
# the first one that needs it creates .venv and installs the package with its dev extras.
#
#   make demo        run the demo
#   make test        fast test suite (doctests included, slow sweeps deselected)
#   make test-slow   everything, slow statistical sweeps included
#   make check       ruff lint, ruff format --check, mypy
#   make format      apply ruff format and ruff's safe fixes
#   make bench       benchmarks
#   make clean       remove .venv, caches and build output

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv test test-slow check lint format bench demo clean

help:
	@sed -n 's/^#   make /make /p' $(firstword $(MAKEFILE_LIST))

venv: $(STAMP)

# PyTorch (the torch extra, part of the test extra). Its default wheel brings several GB of
# CUDA libraries, which the tests do not need. So, first: with TORCH_INDEX set (e.g.
# https://download.pytorch.org/whl/cpu), torch comes from that index; otherwise, where the
# pip configuration offers a CPU-only build (a version ending in +cpu), the newest one is
# installed; otherwise the extra installs the default build. See docs/torch.md.
TORCH_INDEX ?=

# Reinstall only when pyproject.toml changes (the install is editable, so source edits
# need nothing). The stamp is written last, so a failed install is retried next time.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ]; then \
	  $(BIN)/python -m pip install --quiet torch --index-url "$(TORCH_INDEX)"; \
	elif cpu=$$($(BIN)/python -m pip index versions torch 2>/dev/null \
	      | sed -n 's/^Available versions: //p' | tr ', ' '\n\n' | grep -m1 '+cpu$$'); then \
	  echo "torch: installing the CPU-only build $$cpu"; \
	  $(BIN)/python -m pip install --quiet "torch==$$cpu" \
	    || echo "torch: torch==$$cpu failed to install; the torch extra picks a build"; \
	fi
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow" $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint: check

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

demo: $(STAMP)
	$(BIN)/python -m pescador demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
