# `make notebooks`: run every notebook in notebooks/ top to bottom in a real Jupyter kernel
# (nbclient) on this machine, exactly as committed (the demo model, CPU), and write the
# outputs back with a stamp (SHA-256 of the code cells and of llem_nb's source) that
# tests/integration/test_notebooks.py checks: commit the notebooks afterwards.
# Each notebook runs in a fresh directory under .cache/notebook-runs/ (its results land
# there, not in notebooks/). PYTHONPATH makes the kernels import this checkout's llem_nb.
# NOTEBOOKS=notebooks/02-batch-sweep.ipynb runs only those; a cell may take up to
# NOTEBOOK_TIMEOUT seconds (a sweep of the demo model on a busy 2-core machine is slow).
NOTEBOOK_RUNS    ?= .cache/notebook-runs
NOTEBOOK_TIMEOUT ?= 3600
NOTEBOOKS        ?=

.PHONY: notebooks
notebooks: $(VENV)/.test-stamp
	PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" $(BIN)/python binder/execute_notebooks.py \
		--in-place --out $(NOTEBOOK_RUNS) --timeout $(NOTEBOOK_TIMEOUT) $(NOTEBOOKS)
