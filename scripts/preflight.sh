#!/usr/bin/env bash
# What `make test` needs before it starts, checked in a second; one line names what is missing.
#
#   PYTHON            Python >= 3.10 with venv (builds .venv; reaches PyPI for its packages)
#   ANALYSIS_OLD_PY   a Python 3.10 interpreter (mk/analysis.mk: the dependency floors)
#   ANALYSIS_NEW_PY   a Python 3.13 interpreter (mk/analysis.mk: the newest releases)
#   CHROMIUM          the browser the browser test drives (mk/browser.mk apt-gets it as root)
#   dockerd, debootstrap  the private Docker engine (scripts/docker-engine.sh apt-gets them
#                     as root; starting dockerd needs root too)
#
# Exit 0 with no output when all is there; else exit 2 with one line on stderr.
set -uo pipefail

PYTHON="${PYTHON:-python3}"
missing=()

root() { [[ $(id -u) -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }

if ! "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
then
    missing+=("Python >= 3.10 with venv as \$PYTHON=$PYTHON (apt-get install python3 python3-venv)")
fi
if [[ -z "${ANALYSIS_OLD_PY:-}" || ! -x "${ANALYSIS_OLD_PY}" ]]; then
    missing+=("a Python 3.10 interpreter (pyenv install 3.10, or ANALYSIS_OLD_PY=/path/to/python3.10)")
fi
if [[ -z "${ANALYSIS_NEW_PY:-}" || ! -x "${ANALYSIS_NEW_PY}" ]]; then
    missing+=("a Python 3.13 interpreter (pyenv install 3.13, or ANALYSIS_NEW_PY=/path/to/python3.13)")
fi
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]] && ! { root && have apt-get; }; then
    missing+=("chromium at $CHROMIUM (apt-get install chromium, as root)")
fi
engine=()
have dockerd || engine+=(docker.io)
have debootstrap || engine+=(debootstrap)
if ((${#engine[@]})) && ! { root && have apt-get; }; then
    missing+=("${engine[*]} for the private Docker engine (apt-get install ${engine[*]}, as root)")
elif ! root; then
    missing+=("root, to start the private Docker engine (scripts/docker-engine.sh runs dockerd)")
fi

if ((${#missing[@]})); then
    line="make test: missing"
    sep=" "
    for item in "${missing[@]}"; do
        line+="$sep$item"
        sep="; "
    done
    echo "$line (see README, \"Two commands\")" >&2
    exit 2
fi
