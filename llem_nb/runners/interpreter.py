"""Another Python interpreter for experiments: e.g. a venv that holds vLLM.

``subprocess:<python>`` runs each experiment with that interpreter. Its backend checks
(installed? engine args? model?) must run there too, before the study starts: a vLLM
venv can import vllm where the notebook's kernel cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ConfigError, PreflightError

PREFLIGHT_TIMEOUT_S = 300.0

_CHILD = """
import json, sys, warnings
from llem_nb.backends.base import get_backend
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.results.schema import ErrorInfo
config = ExperimentConfig.model_validate_json(sys.stdin.read())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        get_backend(config.backend).preflight(config)
        error = None
    except Exception as exc:
        error = ErrorInfo.from_exception(exc).model_dump(mode="json")
        error["field"] = getattr(exc, "field", None)
print(json.dumps({"error": error, "warnings": [str(w.message) for w in caught]}))
"""


def check_python(path: str) -> str:
    """An existing, executable interpreter path (absolute), or a ConfigError naming it."""
    resolved = Path(path).expanduser()
    if not resolved.is_file() or not os.access(resolved, os.X_OK):
        raise ConfigError(
            f"runner subprocess:{path}: no executable Python at {resolved}",
            field="runner",
            fix="give the path of a venv's bin/python (for vLLM on a CPU: `make vllm-venv` "
            "builds .cache/vllm-venv/bin/python)",
        )
    return str(resolved.absolute())


def is_this_python(path: str) -> bool:
    """Same interpreter path as this process (venv links compared unresolved, on purpose)."""
    return os.path.abspath(path) == os.path.abspath(sys.executable)


def preflight_in(python: str, config: ExperimentConfig) -> None:
    """Run the backend's preflight in ``python``; re-raise its error, re-emit its warnings."""
    try:
        proc = subprocess.run(
            [python, "-c", _CHILD],
            input=config.model_dump_json(),
            capture_output=True,
            text=True,
            timeout=PREFLIGHT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PreflightError(
            f"could not run the {config.backend} checks with {python}: {exc}",
            fix="check that this interpreter starts",
        ) from exc
    lines = proc.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if proc.returncode != 0 or not isinstance(report, dict):
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise PreflightError(
            f"the {config.backend} checks failed to run with {python}: {tail or 'no output'}",
            fix=f"install llem_nb in that environment ({python} -m pip install -e <llem_nb repo>)",
        )
    for message in report.get("warnings", []):
        warnings.warn(message, stacklevel=4)
    error = report.get("error")
    if error:
        cls = ConfigError if error.get("type") == "ConfigError" else PreflightError
        message = f"{error['message']} (checked with {python})"
        if cls is ConfigError:
            raise ConfigError(message, field=error.get("field"), fix=error.get("fix"))
        raise PreflightError(message, fix=error.get("fix"))
