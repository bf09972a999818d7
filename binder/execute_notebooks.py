"""Run the shipped notebooks top to bottom in a real kernel; exit 1 if any cell errors.

Two uses:
- a check (binder/postBuild with the demo model; tests/integration/test_binder.py with the
  tiny model): each notebook runs in its own working directory under --out, with the
  overrides appended to its cell tagged ``parameters`` (papermill's convention); the
  executed copy is kept there;
- ``--in-place`` (``make notebooks``): each notebook runs exactly as committed (no
  overrides) in a fresh working directory under --out, and its outputs are written back
  into notebooks/ with a stamp in its metadata: the SHA-256 of its code cells and of
  llem_nb's source. tests/integration/test_notebooks.py compares the stamp with the
  current code, so committed outputs are known to come from it.

A notebook whose metadata lists ``llem_nb.requires`` (public names of ``llem_nb``) is
skipped, and says so, when this llem_nb lacks one of them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "llem_nb"
STAMP = "outputs"
MADE_BY = "make notebooks (binder/execute_notebooks.py --in-place)"


def code_digest(nb: nbformat.NotebookNode) -> str:
    """SHA-256 over the source of every code cell, in order."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8") + b"\0")
    return digest.hexdigest()


def package_digest(package: Path = PACKAGE) -> str:
    """SHA-256 over every file of the llem_nb package (path and bytes; caches left out)."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )  # fmt: skip
    for path in files:
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def stamp(nb: nbformat.NotebookNode) -> dict[str, str]:
    return {
        "code_sha256": code_digest(nb),
        "llem_nb_sha256": package_digest(),
        "made_by": MADE_BY,
    }


def missing_requirements(nb: nbformat.NotebookNode) -> list[str]:
    """The names in ``metadata.llem_nb.requires`` this llem_nb does not have."""
    import llem_nb

    wanted = nb.metadata.get("llem_nb", {}).get("requires", [])
    return [name for name in wanted if name not in getattr(llem_nb, "__all__", ())]


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


def execute(nb: nbformat.NotebookNode, workdir: Path, timeout: int) -> list[str]:
    """Run ``nb`` in a fresh kernel started in ``workdir``; its error lines (empty: fine)."""
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        client.execute()
    except Exception as exc:  # nbclient raises on the first failing cell; keep going
        return errors(nb) or [f"{type(exc).__name__}: {exc}"]
    return errors(nb)


def run(path: Path, out: Path, values: dict[str, str] | None, timeout: int) -> list[str]:
    """Execute one notebook in ``out/<stem>/``. ``values``: the overrides (check mode, the
    executed copy kept there); None: in place (outputs and stamp written back to ``path``
    when no cell failed)."""
    workdir = out / path.stem
    if values is None and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    if values is not None:
        parametrise(nb, values)
    problems = execute(nb, workdir, timeout)
    if values is not None:
        nbformat.write(nb, workdir / path.name)
    elif not problems:
        nb.metadata.setdefault("llem_nb", {})[STAMP] = stamp(nb)
        nbformat.write(nb, path)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--in-place", action="store_true",
                        help="run as committed, write outputs and stamp back (make notebooks)")
    parser.add_argument("--model", default=None, help="smollm2 (default), tiny, or a path")
    parser.add_argument("--n-prompts", type=int, default=None)
    parser.add_argument("--max-output-tokens", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("notebook-runs"))
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)  # fmt: skip
    values: dict[str, str] | None = {"MODEL": repr(args.model or "smollm2")}
    overrides = (args.model, args.n_prompts, args.max_output_tokens)
    if args.in_place:
        if any(v is not None for v in overrides):
            parser.error("--in-place runs the notebooks as committed: no --model/--n-prompts/…")
        values = None
    else:
        assert values is not None
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
        lacking = missing_requirements(nbformat.read(path, as_version=4))
        if lacking:
            print(f"{path.name}: skipped: this llem_nb has no {', '.join(lacking)}", flush=True)
            continue
        problems = run(path.resolve(), args.out.resolve(), values, args.timeout)
        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print(f"{path.name}: {status} ({time.perf_counter() - t0:.0f} s)", flush=True)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
