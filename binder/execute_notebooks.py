"""Run the shipped notebooks top to bottom in a real kernel; exit 1 if any cell errors.

Used by binder/postBuild (with the demo model) and by tests/integration/test_binder.py
(with the tiny model, in a virtual env built only from binder/requirements.txt). Each
notebook runs in its own working directory under --out, with the overrides appended to
its cell tagged ``parameters`` (papermill's convention); the executed copy is kept there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def parametrise(nb: nbformat.NotebookNode, values: dict[str, str]) -> None:
    """Append ``NAME = value`` lines for the names the parameters cell already defines."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            lines = [f"{k} = {v}" for k, v in values.items() if f"{k} =" in cell.source]
            cell.source += "\n# overrides\n" + "\n".join(lines)
            return


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def run(path: Path, out: Path, values: dict[str, str], timeout: int) -> list[str]:
    """Execute one notebook in ``out/<stem>/``; return its error lines (empty when fine)."""
    workdir = out / path.stem
    workdir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    parametrise(nb, values)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    try:
        client.execute()
    except Exception as exc:  # nbclient raises on the first failing cell; keep going
        problems = errors(nb) or [f"{type(exc).__name__}: {exc}"]
    else:
        problems = errors(nb)
    nbformat.write(nb, workdir / path.name)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--model", default="smollm2", help="smollm2, tiny, or a path")
    parser.add_argument("--n-prompts", type=int, default=None)
    parser.add_argument("--max-output-tokens", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("notebook-runs"))
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    values = {"MODEL": repr(args.model)}
    if args.n_prompts is not None:
        values["N_PROMPTS"] = str(args.n_prompts)
    if args.max_output_tokens is not None:
        values["MAX_OUTPUT_TOKENS"] = str(args.max_output_tokens)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("MPLBACKEND", None)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    failed = 0
    for path in notebooks:
        t0 = time.perf_counter()
        problems = run(path.resolve(), args.out.resolve(), values, args.timeout)
        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print(f"{path.name}: {status} ({time.perf_counter() - t0:.0f} s)", flush=True)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
