"""``make test`` checks what it needs first and names what is missing in one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "preflight.sh"


def _preflight(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    present = tmp_path / "python-here"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    base = {
        "PATH": os.environ["PATH"],
        "PYTHON": sys.executable,
        "ANALYSIS_OLD_PY": str(present),
        "ANALYSIS_NEW_PY": str(present),
        "CHROMIUM": str(present),
    }
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_interpreters_are_named_in_one_line(tmp_path: Path) -> None:
    run = _preflight(tmp_path, ANALYSIS_OLD_PY="", ANALYSIS_NEW_PY=str(tmp_path / "nope"))
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("make test: missing a Python 3.10 interpreter")
    assert "a Python 3.13 interpreter (pyenv install 3.13" in lines[0]


def test_a_python_without_venv_or_too_old_is_named(tmp_path: Path) -> None:
    run = _preflight(tmp_path, PYTHON=str(tmp_path / "no-python"))
    assert run.returncode == 2
    assert "Python >= 3.10 with venv" in run.stderr and "python3-venv" in run.stderr


def test_the_test_target_runs_preflight_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^test:\s*(\S+)", makefile, flags=re.MULTILINE)
    assert match is not None and match.group(1) == "preflight"
    assert "scripts/preflight.sh" in makefile
