"""Every shipped notebook runs top to bottom in a real Jupyter kernel (tiny model, CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
TEST_PARAMETERS = {"MODEL": '"tiny"', "N_PROMPTS": "4", "MAX_OUTPUT_TOKENS": "8"}

pytestmark = pytest.mark.integration


def parametrise(nb: nbformat.NotebookNode, values: dict[str, str]) -> None:
    """Append overrides to the cell tagged ``parameters`` (papermill's convention)."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            lines = [f"{k} = {v}" for k, v in values.items() if f"{k} =" in cell.source]
            cell.source += "\n# test overrides\n" + "\n".join(lines)
            return


def execute(nb: nbformat.NotebookNode, cwd: Path, **env: str) -> None:
    """Run ``nb`` in a real kernel started in ``cwd``, with ``env`` added to its environment."""
    env_before = dict(os.environ)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.update(env)
    os.environ.pop("MPLBACKEND", None)
    try:
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    parametrise(nb, TEST_PARAMETERS)
    execute(nb, tmp_path)
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    images = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert images, "the notebook should show at least one figure"
    assert list(tmp_path.glob("results/*/*.result.json"))
