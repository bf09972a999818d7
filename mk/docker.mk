# The Docker runner: its images, and a private Docker engine for tests and benchmarks.
# The integration tests need nothing from here: their session fixture runs
# scripts/docker-engine.sh itself (installs docker.io + debootstrap when missing, starts
# its own dockerd under .cache/docker, builds the self-contained CPU images from a
# wheelhouse in .cache/wheelhouse, reuses them while their inputs are unchanged, and stops
# the daemon after).
DOCKER_ENGINE  := scripts/docker-engine.sh
# Images `make images` builds, with the tag runner resolution expects
# (ghcr.io/llem-nb/<backend>:<version>-cuda<major>, or -cpu on a machine without CUDA).
# Add vllm for its CUDA image (its wheelhouse is several GB).
IMAGE_BACKENDS ?= pytorch
# The private engine reaches no registry, so its images start FROM the debootstrap base.
IMAGE_BASE     ?= llem-nb/debian-base:bookworm-numa
IMAGE_FLAGS    ?=
WHEELHOUSE     ?= $(CURDIR)/.cache/wheelhouse

.PHONY: images docker-engine docker-engine-stop bench-docker

# Build (or find up to date) each backend's image in the private engine; prints size and time.
images: $(VENV)/.test-stamp
	$(DOCKER_ENGINE) start >/dev/null
	PYTHON=$(BIN)/python $(DOCKER_ENGINE) base
	export DOCKER_HOST="$$($(DOCKER_ENGINE) host)" LLEM_WHEELHOUSE_DIR="$(WHEELHOUSE)"; \
	for backend in $(IMAGE_BACKENDS); do \
		start=$$(date +%s); \
		$(BIN)/llem-nb images build $$backend --base-image $(IMAGE_BASE) $(IMAGE_FLAGS) || exit 1; \
		echo "$$backend: $$(( $$(date +%s) - start )) s"; \
	done; \
	$(BIN)/llem-nb images list

# A private dockerd (prints its DOCKER_HOST) with the debootstrap base and the CPU images.
docker-engine: $(VENV)/.test-stamp
	$(DOCKER_ENGINE) start
	PYTHON=$(BIN)/python $(DOCKER_ENGINE) build pytorch vllm

docker-engine-stop:
	$(DOCKER_ENGINE) stop

# DockerRunner dispatch vs bare `docker run --rm` (starts and stops the engine).
bench-docker: $(VENV)/.test-stamp
	$(BIN)/python benchmarks/docker_dispatch.py
