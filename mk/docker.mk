# The Docker runner: its images, and a private Docker engine for tests and benchmarks.
# The integration tests need nothing from here: their session fixture runs
# scripts/docker-engine.sh itself (installs docker.io + debootstrap when missing, starts
# its own dockerd under .cache/docker, builds the CPU image, stops the daemon after).
DOCKER_ENGINE  := scripts/docker-engine.sh
IMAGE_BACKENDS ?= pytorch vllm

.PHONY: images docker-engine docker-engine-stop bench-docker

# Build each backend's image with the tag runner resolution expects
# (ghcr.io/llem-nb/<backend>:<version>-cuda<major>, or -cpu without CUDA).
images: $(VENV)/.test-stamp
	for backend in $(IMAGE_BACKENDS); do $(BIN)/llem-nb images build $$backend || exit 1; done

# A private dockerd (prints its DOCKER_HOST) with the debootstrap base and the CPU image.
docker-engine: $(VENV)/.test-stamp
	$(DOCKER_ENGINE) start
	PYTHON=$(BIN)/python $(DOCKER_ENGINE) build

docker-engine-stop:
	$(DOCKER_ENGINE) stop

# DockerRunner dispatch vs a bare `docker run --rm <image> true` (starts and stops the engine).
bench-docker: $(VENV)/.test-stamp
	$(BIN)/python benchmarks/docker_dispatch.py
