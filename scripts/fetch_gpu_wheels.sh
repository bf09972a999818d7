#!/usr/bin/env bash
# Download the wheels the GPU check needs beyond what the GPU host has (pydantic and its
# dependencies; platformdirs and tqdm, which a study's run loop imports) into wheels/, for the CPython versions and CPUs the host may run.
# The host has no network; scripts/gpu_check.sh installs from wheels/ with --no-index.
#
#   scripts/fetch_gpu_wheels.sh                     # versions pinned to this checkout's venv
#   ARCHES="x86_64 aarch64" scripts/fetch_gpu_wheels.sh   # also for an ARM (Grace) host
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
PACKAGES=(
  "pydantic==$(version pydantic)"
  "pydantic-core==$(version pydantic_core)"
  "annotated-types==$(version annotated_types)"
  "typing-extensions==$(version typing_extensions)"
  "typing-inspection==$(version typing_inspection)"
  "platformdirs==$(version platformdirs)"
  "tqdm==$(version tqdm)"
)
mkdir -p wheels
for arch in ${ARCHES:-x86_64}; do
  for pyver in 3.10 3.11 3.12 3.13 3.14; do
    if ! "$PY" -m pip download --quiet --only-binary=:all: --no-deps \
        --python-version "$pyver" --implementation cp \
        --platform "manylinux2014_${arch}" --platform "manylinux_2_17_${arch}" \
        --dest wheels "${PACKAGES[@]}"; then
      echo "note: no complete wheel set for CPython $pyver on $arch (skipped)" >&2
    fi
  done
done
ls -1 wheels
