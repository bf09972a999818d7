# The binder check (tests/integration/test_binder.py): a fresh virtual env built only from
# binder/requirements.txt plus what binder/postBuild installs (llem_nb --no-deps, the demo
# model's package), as mybinder.org would. Built once, rebuilt when those files change.
#
# binder/requirements.txt names PyTorch's CPU wheel index for torch==2.13.0+cpu. Our
# machines (developers' and CI's) reach PyPI only, never that index, and their pip is set
# up with a local wheel directory that holds that very torch 2.13.0+cpu wheel; so by
# default (BINDER_INDEX=local) the env is built from a copy of the file without its index
# lines, nothing else differing. BINDER_INDEX=upstream installs the file exactly as
# mybinder.org does (for a machine that reaches the index).
BINDER_VENV  ?= .cache/binder-venv
BINDER_PY    := $(BINDER_VENV)/bin/python
BINDER_INDEX ?= local
BINDER_REQS  := $(BINDER_VENV)/requirements.$(BINDER_INDEX).txt

$(BINDER_VENV)/.stamp: binder/requirements.txt binder/postBuild
	rm -rf $(BINDER_VENV)
	$(PYTHON) -m venv $(BINDER_VENV)
	$(BINDER_PY) -m pip install -q --upgrade pip
	if [ "$(BINDER_INDEX)" = upstream ]; then cp binder/requirements.txt $(BINDER_REQS); \
	else grep -v -E '^--(extra-)?index-url' binder/requirements.txt > $(BINDER_REQS); fi
	$(BINDER_PY) -m pip install -q -r $(BINDER_REQS)
	PATH="$(abspath $(BINDER_VENV))/bin:$$PATH" LLEM_BINDER_INSTALL_ONLY=1 binder/postBuild
	touch $@

.PHONY: binder-venv
binder-venv: $(BINDER_VENV)/.stamp

TEST_DEPS += binder-venv
