# The binder check (tests/integration/test_binder.py): a fresh virtual env built only from
# binder/requirements.txt plus what binder/postBuild installs (llem_nb --no-deps, the demo
# model's package), as mybinder.org would. Built once, rebuilt when those files change.
BINDER_VENV ?= .cache/binder-venv
BINDER_PY   := $(BINDER_VENV)/bin/python

$(BINDER_VENV)/.stamp: binder/requirements.txt binder/postBuild
	rm -rf $(BINDER_VENV)
	$(PYTHON) -m venv $(BINDER_VENV)
	$(BINDER_PY) -m pip install -q --upgrade pip
	$(BINDER_PY) -m pip install -q -r binder/requirements.txt
	PATH="$(abspath $(BINDER_VENV))/bin:$$PATH" LLEM_BINDER_INSTALL_ONLY=1 binder/postBuild
	touch $@

.PHONY: binder-venv
binder-venv: $(BINDER_VENV)/.stamp

TEST_DEPS += binder-venv
