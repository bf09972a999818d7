# The analysis install (tests/integration/test_analysis_install.py): llem_nb with its base
# dependencies only (no torch, no NVML, no notebook stack), in two venvs:
#   oldest  the oldest Python we support, every base dependency pinned to its floor in
#           pyproject.toml (scripts/analysis_floors.py writes the constraints);
#   newest  the newest Python here with the newest pandas (3.x).
# llem_nb is installed editable, so a venv is rebuilt only when pyproject.toml changes.
# pyenv keeps the interpreters here; its `python3.10` shim refuses, so call them directly.
ANALYSIS_DIR    ?= .cache/analysis
ANALYSIS_OLD_PY ?= $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python)))
ANALYSIS_NEW_PY ?= $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python)))

define analysis_python_check
	@test -x "$(1)" || { echo "mk/analysis.mk: no $(2) interpreter found;" \
	  "install it (pyenv install $(2)) or pass $(3)=/path/to/python$(2)"; exit 1; }
endef

$(ANALYSIS_DIR)/floors.txt: pyproject.toml scripts/analysis_floors.py
	$(call analysis_python_check,$(ANALYSIS_NEW_PY),3.13,ANALYSIS_NEW_PY)
	mkdir -p $(ANALYSIS_DIR)
	$(ANALYSIS_NEW_PY) scripts/analysis_floors.py pyproject.toml > $@.tmp
	mv $@.tmp $@

$(ANALYSIS_DIR)/oldest/.stamp: pyproject.toml $(ANALYSIS_DIR)/floors.txt
	$(call analysis_python_check,$(ANALYSIS_OLD_PY),3.10,ANALYSIS_OLD_PY)
	rm -rf $(ANALYSIS_DIR)/oldest
	$(ANALYSIS_OLD_PY) -m venv $(ANALYSIS_DIR)/oldest
	$(ANALYSIS_DIR)/oldest/bin/python -m pip install -q --upgrade pip
	$(ANALYSIS_DIR)/oldest/bin/python -m pip install -q -c $(ANALYSIS_DIR)/floors.txt -e .
	touch $@

$(ANALYSIS_DIR)/newest/.stamp: pyproject.toml
	$(call analysis_python_check,$(ANALYSIS_NEW_PY),3.13,ANALYSIS_NEW_PY)
	rm -rf $(ANALYSIS_DIR)/newest
	$(ANALYSIS_NEW_PY) -m venv $(ANALYSIS_DIR)/newest
	$(ANALYSIS_DIR)/newest/bin/python -m pip install -q --upgrade pip
	$(ANALYSIS_DIR)/newest/bin/python -m pip install -q --upgrade -e . "pandas>=3"
	touch $@

.PHONY: analysis-venvs
analysis-venvs: $(ANALYSIS_DIR)/oldest/.stamp $(ANALYSIS_DIR)/newest/.stamp

TEST_DEPS += analysis-venvs
