"""binder/: a fresh env built only from binder/requirements.txt (+ what postBuild installs)
has everything llem_nb needs, holds the CPU build of torch, and runs every notebook top
to bottom."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / "binder-venv"
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))

MISSING_DEPS = """
from importlib.metadata import PackageNotFoundError, requires, version
from packaging.requirements import Requirement

missing = []
for line in requires("llem_nb"):
    req = Requirement(line)
    extras = ({"extra": e} for e in ("", "notebook", "pytorch", "demo"))
    if req.marker is None or any(req.marker.evaluate(env) for env in extras):
        try:
            version(req.name)
        except PackageNotFoundError:
            missing.append(str(req))
print("\\n".join(missing))
"""


@pytest.fixture(scope="session")
def binder_python() -> Path:
    """The binder env's python; built with `make binder-venv` when it is not there yet."""
    if not (VENV / ".stamp").is_file():
        subprocess.run(
            ["make", "-s", "binder-venv", f"PYTHON={sys.base_prefix}/bin/python3"],
            cwd=ROOT,
            check=True,
            timeout=1200,
        )
    return VENV / "bin" / "python"


def test_binder_requirements_cover_llem_nb(binder_python: Path) -> None:
    found = subprocess.run(
        [str(binder_python), "-c", MISSING_DEPS], capture_output=True, text=True, check=True
    )
    assert found.stdout.split() == [], "add these to binder/requirements.txt"
    where = subprocess.run(
        [str(binder_python), "-c", "import llem_nb, sys; print(llem_nb.__file__, sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [str(ROOT / "llem_nb" / "__init__.py"), str(VENV)]


CPU_TORCH = """
import importlib.metadata as md, json, torch
names = sorted(d.metadata["Name"].lower() for d in md.distributions())
print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda,
                  "nvidia": [n for n in names if n.startswith("nvidia-") and n != "nvidia-ml-py"]}))
"""


def test_binder_requirements_name_the_cpu_index_and_build() -> None:
    lines = [
        line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    ]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert [line for line in lines if line.startswith("torch")] == ["torch==2.13.0+cpu"]
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_binder_env_has_the_cpu_build_of_torch(binder_python: Path) -> None:
    import json

    found = subprocess.run(
        [str(binder_python), "-c", CPU_TORCH], capture_output=True, text=True, check=True
    )
    facts = json.loads(found.stdout)
    assert facts["version"] == "2.13.0+cpu" and facts["cuda"] is None
    assert facts["nvidia"] == [], "the CUDA build of torch pulled its libraries"
    used = sorted(VENV.glob("requirements.*.txt"))
    assert used, "make binder-venv keeps the requirements file it installed"
    original = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    dropped = [line for line in original if line not in used[0].read_text().splitlines()]
    assert dropped in ([], ["--extra-index-url https://download.pytorch.org/whl/cpu"])


def test_binder_env_runs_every_notebook(binder_python: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    ran = subprocess.run(
        [str(binder_python), str(ROOT / "binder" / "execute_notebooks.py"), "--model", "tiny",
         "--n-prompts", "4", "--max-output-tokens", "8", "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert [line.split(":")[0] for line in ran.stdout.splitlines()] == NOTEBOOKS
    assert "FAILED" not in ran.stdout
    assert list((tmp_path / "runs").glob("01-quickstart/results/*/*.result.json"))
    assert (tmp_path / "runs" / "04-report" / "report.html").is_file()
