#!/usr/bin/env bash
# Run llem_nb's GPU check on a host with an NVIDIA GPU and no network:
#   python3 with torch, transformers, nvidia-ml-py, pandas, pyyaml, pyarrow (no pydantic,
#   no llem_nb installed). pydantic and its dependencies come as wheels in ./wheels
#   (made by scripts/fetch_gpu_wheels.sh); they are installed into a private directory,
#   never into the host's Python. Run from anywhere; results go to $OUT/gpu-check.
#
#   OUT=/some/dir scripts/gpu_check.sh [--fake] [--readiness-only]
#
# The last step prints issue 24's readiness table (ok / FAIL / skipped: why, per item; a
# Docker step only where the host has Docker). --fake: everything on the CPU against the
# NVML simulator (no GPU needed); --readiness-only: just that table.
set -euo pipefail
FAKE=()
ONLY_READINESS=0
for arg in "$@"; do
  case "$arg" in
    --fake) FAKE=(--fake) ;;
    --readiness-only) ONLY_READINESS=1 ;;
    *) echo "unknown option $arg (use --fake, --readiness-only)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu-check-out}
DEPS=${LLEM_GPU_DEPS:-$(mktemp -d /tmp/llem-gpu-deps.XXXXXX)}
mkdir -p "$OUT"

if ! "$PY" -c "import pydantic, platformdirs, tqdm, sys; sys.exit(pydantic.VERSION[0] != '2')" 2>/dev/null; then
  if [ ! -d wheels ]; then
    echo "pydantic is not installed and there is no wheels/ dir (run scripts/fetch_gpu_wheels.sh)" >&2
    exit 2
  fi
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install --quiet --no-index --find-links wheels/ --target "$DEPS" \
      pydantic annotated-types typing-extensions typing-inspection platformdirs tqdm
  else
    tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    arch=$(uname -m)
    for whl in wheels/*.whl; do
      case "$whl" in
        *pydantic_core*) [[ "$whl" == *"$tag"*"$arch"* ]] || continue ;;
      esac
      "$PY" -m zipfile -e "$whl" "$DEPS"
    done
  fi
fi

export PYTHONPATH="$DEPS:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ "$ONLY_READINESS" = 1 ]; then
  echo "== readiness (issue 24)"
  exec "$PY" -m llem_nb.cli.readiness "${FAKE[@]}"
fi
echo "== host"
"$PY" - <<'PY'
import platform, importlib.metadata as m
print("python", platform.python_version(), platform.machine())
for p in ("torch", "transformers", "nvidia-ml-py", "pandas", "pyarrow", "pydantic", "accelerate"):
    try:
        print(f"{p:<13} {m.version(p)}")
    except m.PackageNotFoundError:
        print(f"{p:<13} -")
PY
nvidia-smi -L 2>/dev/null || true

echo "== docker (issue 13: the engine and the NVIDIA toolkit on this host)"
if command -v docker >/dev/null 2>&1; then
  docker version --format 'client {{.Client.Version}} server {{.Server.Version}}' 2>&1 || true
  docker info --format 'runtimes: {{json .Runtimes}}  default: {{.DefaultRuntime}}  cgroup: {{.CgroupVersion}}' 2>&1 || true
else
  echo "docker: not installed"
fi
for tool in nvidia-ctk nvidia-container-cli nvidia-container-runtime; do
  if command -v "$tool" >/dev/null 2>&1; then
    echo "$tool: $("$tool" --version 2>&1 | head -1)"
  else
    echo "$tool: not installed"
  fi
done
"$PY" -c "from llem_nb.runners.docker import docker_status; print(docker_status())" 2>&1 | tail -20 || true

echo "== gpu-check"
status=0
"$PY" -m llem_nb.gpu_check --out "$OUT/gpu-check" "${FAKE[@]}" || status=$?

echo "== readiness (issue 24)"
"$PY" -m llem_nb.cli.readiness "${FAKE[@]}" || status=$?
exit "$status"
