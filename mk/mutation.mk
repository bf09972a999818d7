# Mutation testing of the core modules (slow; not part of `make test`). scripts/mutation.py
# runs mutmut per module of mk/mutation.toml with that module's mirrored tests, prints the
# score per module and the survivors, and skips modules unchanged since the last run.
# MUTATION_MODULES=llem_nb/run/journal.py limits the run; MUTATION_ARGS=--force re-runs all.
MUTATION_MODULES ?=
MUTATION_ARGS    ?=

.PHONY: mutation

$(VENV)/.mutation-stamp: pyproject.toml $(VENV)/.test-stamp
	$(PIP) install -q -e ".[mutation]"
	touch $@

mutation: $(VENV)/.mutation-stamp
	$(BIN)/python scripts/mutation.py $(MUTATION_ARGS) $(MUTATION_MODULES)
