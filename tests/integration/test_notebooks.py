"""The shipped notebooks: they run top to bottom in a real kernel (tiny model, CPU), their
committed outputs come from the current code (the stamp ``make notebooks`` writes), and a
figure draws once in a real kernel however it is shown."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TEST_PARAMETERS = {"MODEL": '"tiny"', "N_PROMPTS": "4", "MAX_OUTPUT_TOKENS": "8"}


def _execute_notebooks() -> ModuleType:
    """binder/execute_notebooks.py, the script behind `make notebooks` (not a package)."""
    spec = importlib.util.spec_from_file_location(
        "execute_notebooks", ROOT / "binder" / "execute_notebooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNNER = _execute_notebooks()


def _param(path: Path) -> object:
    """A notebook as a test parameter, skipped while this llem_nb lacks what it requires."""
    lacking = RUNNER.missing_requirements(nbformat.read(path, as_version=4))
    reason = f"this llem_nb has no {', '.join(lacking)} yet (its branch is not merged)"
    return pytest.param(path, id=path.name, marks=pytest.mark.skipif(bool(lacking), reason=reason))


PARAMS = [_param(p) for p in NOTEBOOKS]


def parametrise(nb: nbformat.NotebookNode, values: dict[str, str]) -> None:
    """Append overrides to the cell tagged ``parameters`` (papermill's convention)."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            lines = [f"{k} = {v}" for k, v in values.items() if f"{k} =" in cell.source]
            cell.source += "\n# test overrides\n" + "\n".join(lines)
            return


def execute(nb: nbformat.NotebookNode, cwd: Path, **env: str) -> None:
    """Run ``nb`` in a real kernel started in ``cwd``, with ``env`` added to its environment
    and this checkout first on its path."""
    env_before = dict(os.environ)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    paths = [str(ROOT), env_before.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.environ.update(env)
    os.environ.pop("MPLBACKEND", None)
    try:
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)


def _outputs(cell: nbformat.NotebookNode, kind: str | None = None) -> list[dict]:
    return [
        out for out in cell.get("outputs", [])
        if kind is None or kind in out.get("data", {}) or out.get("output_type") == kind
    ]  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("path", PARAMS)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    parametrise(nb, TEST_PARAMETERS)
    execute(nb, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [out for cell in code for out in _outputs(cell, "error")]
    assert [out for cell in code for out in _outputs(cell, "image/png")], "no figure shown"
    assert list(tmp_path.glob("results/*/*.result.json"))


@pytest.mark.parametrize("path", PARAMS)
def test_committed_outputs_come_from_the_current_code(path: Path) -> None:
    """The stamp `make notebooks` wrote matches these code cells and this llem_nb, and the
    outputs are those of one clean top-to-bottom run (no re-run here: it is slow)."""
    nb = nbformat.read(path, as_version=4)
    fix = "run `make notebooks` and commit the notebooks"
    stamp = nb.metadata.get("llem_nb", {}).get(RUNNER.STAMP)
    assert stamp, f"{path.name} carries no outputs stamp: {fix}"
    assert stamp["code_sha256"] == RUNNER.code_digest(nb), f"code cells changed since: {fix}"
    assert stamp["llem_nb_sha256"] == RUNNER.package_digest(), f"llem_nb changed since: {fix}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [out for cell in code for out in _outputs(cell, "error")]
    assert [out for cell in code for out in _outputs(cell, "image/png")], "no figure shown"


def test_the_stamp_changes_with_the_code(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    before = RUNNER.code_digest(nb)
    nb.cells.append(nbformat.v4.new_markdown_cell("prose does not count"))
    assert RUNNER.code_digest(nb) == before
    nb.cells[0].source = "x = 2"
    assert RUNNER.code_digest(nb) != before
    package = tmp_path / "llem_nb"
    (package / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    first = RUNNER.package_digest(package)
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"cache")
    assert RUNNER.package_digest(package) == first
    (package / "a.py").write_text("A = 2\n")
    assert RUNNER.package_digest(package) != first


DRAW_ONCE = {
    "setup": """
import pandas as pd
import llem_nb as ll
rows = [dict(experiment_id=f"e{b}", cycle=c, status="ok", model="m", backend="pytorch",
             batch_size=b, energy_source="nvml", output_tokens=100.0,
             energy_per_output_token_j=1.0 / b + 0.01 * c, throughput_output_tok_s=10.0 * b + c)
        for b in (1, 2, 4) for c in range(3)]
df = pd.DataFrame(rows)
""",
    "last line": "ll.plots.energy_per_token(df)",
    "assigned": "fig = ll.plots.throughput_vs_energy(df)",
    "shown again later": "fig",
    "assigned and last": "fig2 = ll.plots.explore(df, 'batch_size', 'energy_per_output_token_j')"
    "\nfig2",
    "display() then last": "from IPython.display import display\n"
    "fig3 = ll.plots.energy_per_token(df)\ndisplay(fig3)\nfig3",
    "your pyplot axes": "import matplotlib.pyplot as plt\nf, ax = plt.subplots()\n"
    "ll.plots.energy_per_token(df, ax=ax);",
    "in a loop": "for b in (2, 4):\n    ll.plots.energy_per_token(df[df.batch_size <= b])",
    "into a report": "path = ll.report(df, 'report.html', reference=False)",
}
IMAGES = {
    "last line": 1, "assigned": 1, "shown again later": 1, "assigned and last": 1,
    "display() then last": 2, "your pyplot axes": 1, "in a loop": 2, "into a report": 0,
}  # fmt: skip


@pytest.mark.integration
def test_a_figure_draws_once_in_a_real_kernel(tmp_path: Path) -> None:
    """The inline backend, a real kernel: one image per figure, whether it is the cell's
    value, assigned, or drawn into pyplot axes; two only where the cell shows it twice."""
    cells = [nbformat.v4.new_code_cell(src) for src in DRAW_ONCE.values()]
    nb = nbformat.v4.new_notebook(cells=cells)
    execute(nb, tmp_path)
    counts = {
        name: len(_outputs(cell, "image/png"))
        for name, cell in zip(DRAW_ONCE, nb.cells, strict=True)
    }
    assert not [o for c in nb.cells for o in _outputs(c, "error")]
    assert {k: v for k, v in counts.items() if k != "setup"} == IMAGES
