"""The package's layers: no import from a higher layer into a lower one, and no cycle.

Imports are read with ``ast`` from every module, those inside functions and under
``TYPE_CHECKING`` too: a cycle that only type checkers see is still a cycle for a reader.
The order, lowest first: errors → config → results, energy → backends → measure →
runners → run → study → plots, reporting, widgets → testing → cli, gpu_check, the
package itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

import llem_nb

PACKAGE = Path(llem_nb.__file__).parent
RANKS: dict[str, int] = {
    "llem_nb._version": 0,
    "llem_nb.errors": 0,
    "llem_nb.config": 1,
    "llem_nb.results": 2,
    "llem_nb.energy": 2,
    "llem_nb.backends": 3,
    "llem_nb.measure": 4,
    "llem_nb.runners": 5,
    "llem_nb.run": 6,
    "llem_nb.study": 7,
    "llem_nb.plots": 8,
    "llem_nb.reporting": 8,
    "llem_nb.widgets": 8,
    "llem_nb.testing": 9,
    "llem_nb.cli": 10,
    "llem_nb.gpu_check": 10,
    "llem_nb.gpu_check.__main__": 11,
    "llem_nb": 10,
}
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 6


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(path: Path, known: Iterable[str]) -> set[str]:
    """Every llem_nb module ``path`` imports, anywhere in the file (``from a import b``
    counts as ``a.b`` when ``a.b`` is a module, else as ``a``)."""
    names = set(known)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "llem_nb")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "llem_nb":
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in names else node.module)
    return {name for name in found if name in names}


def rank(module: str) -> int:
    """The rank of the longest layer prefix of ``module``."""
    best = max((p for p in RANKS if module == p or module.startswith(p + ".")), key=len)
    return RANKS[best]


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    found = modules(root)
    return {name: imports(path, found) - {name} for name, path in found.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} (layer {rank(a)}) imports {b} (layer {rank(b)})"
        for a, targets in edges.items()
        for b in targets
        if rank(b) > rank(a)
    )


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that returns to its start, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def layer_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between layers (packages), for cycles among layers of one rank."""

    def layer(module: str) -> str:
        return max((p for p in RANKS if module == p or module.startswith(p + ".")), key=len)

    out: dict[str, set[str]] = {}
    for a, targets in edges.items():
        out.setdefault(layer(a), set()).update(layer(b) for b in targets if layer(b) != layer(a))
    return out


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = [m for m in modules() if not any(m == p or m.startswith(p + ".") for p in RANKS)]
    assert unplaced == [], f"modules outside every layer: {unplaced}; add them to RANKS"


def test_no_import_reaches_up_a_layer() -> None:
    found = upward_imports(graph())
    assert found == [], "upward imports:\n" + "\n".join(found)


def test_no_import_cycle() -> None:
    edges = graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])
    cycle = find_cycle(layer_edges(edges))
    assert cycle is None, "cycle between layers: " + " → ".join(cycle or [])


def test_modules_stay_small_and_the_top_level_holds_few() -> None:
    long = [
        f"{m} ({n})"
        for m, p in modules().items()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert long == [], f"modules over {MAX_LINES} lines: {long}"
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"top-level modules: {sorted(top)}"


def test_each_layer_says_what_it_owns() -> None:
    for layer in RANKS:
        path = PACKAGE.parent / Path(*layer.split(".")) / "__init__.py"
        if path.exists():
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and len(doc) > 40, f"{layer} has no docstring saying what it owns"


NVML_HOMES = ("llem_nb.energy", "llem_nb.testing")


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of every non-llem_nb module ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found - {"llem_nb"}


def nvml_outside_energy(root: Path = PACKAGE) -> list[str]:
    return sorted(
        name
        for name, path in modules(root).items()
        if "pynvml" in third_party_imports(path)
        and not any(name == home or name.startswith(home + ".") for home in NVML_HOMES)
    )


def test_nvml_is_imported_only_under_energy_and_testing() -> None:
    """One door to the hardware: everything else takes ``llem_nb.energy.device.Nvml``."""
    assert nvml_outside_energy() == []


def test_a_planted_raw_nvml_import_is_caught(tmp_path: Path) -> None:
    root = _plant(
        tmp_path,
        {
            "energy/__init__.py": "",
            "energy/device.py": "import pynvml\n",
            "runners/__init__.py": "",
            "runners/images.py": "def f():\n    from pynvml import nvmlInit\n",
        },
    )
    assert nvml_outside_energy(root) == ["llem_nb.runners.images"]


PURE_CALLS = frozenset({"sorted", "list", "tuple", "dict", "frozenset", "set"})


def top_level_effects(path: Path) -> list[str]:
    """Calls run at import time by a module's top level (outside functions and classes),
    other than building a literal (``sorted``, ``list`` …): registering, wiring, writing
    the environment."""
    found: list[str] = []
    for statement in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Name) and node.func.id in PURE_CALLS
            ):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.Subscript | ast.Attribute) and isinstance(
                node.ctx, ast.Store
            ):
                found.append(f"line {node.lineno}: assigns {ast.unparse(node)}")
    return found


def test_the_package_top_level_has_no_side_effects() -> None:
    assert top_level_effects(PACKAGE / "__init__.py") == []


def test_a_planted_import_time_effect_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "init.py"
    path.write_text(
        "import os\n__all__ = sorted(['a'])\n"
        "def _wire():\n    pass\n_wire()\nos.environ['X'] = '1'\n"
    )
    assert top_level_effects(path) == ["line 5: _wire()", "line 6: assigns os.environ['X']"]


def command_lines_outside_cli(root: Path = PACKAGE) -> list[str]:
    """Modules outside ``cli/`` that build a command line (argparse, subparsers).

    ``testing/`` is exempt: its stand-in processes (the stub OpenAI server) take their own
    flags for tests to start them, and are not ``llem-nb`` commands."""
    return sorted(
        name
        for name, path in modules(root).items()
        if not (name == "llem_nb.cli" or name.startswith(("llem_nb.cli.", "llem_nb.testing.")))
        and (
            "argparse" in third_party_imports(path)
            or any(
                isinstance(node, ast.Attribute)
                and node.attr in ("add_parser", "add_subparsers", "add_argument")
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            )
        )
    )


def test_cli_subcommands_live_under_cli() -> None:
    assert command_lines_outside_cli() == []


def test_a_planted_subcommand_outside_cli_is_caught(tmp_path: Path) -> None:
    root = _plant(
        tmp_path,
        {
            "cli/__init__.py": "import argparse\n",
            "runners/__init__.py": "",
            "runners/cli.py": "def add(sub):\n    sub.add_parser('images')\n",
            "gpu_check/__init__.py": "import argparse\n",
        },
    )
    assert command_lines_outside_cli(root) == ["llem_nb.gpu_check", "llem_nb.runners.cli"]


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "llem_nb"
    for name, text in {"__init__.py": "", **files}.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def test_a_planted_cycle_and_an_upward_import_are_caught(tmp_path: Path) -> None:
    """The checks themselves can fail: a cycle under TYPE_CHECKING, and config → run."""
    root = _plant(
        tmp_path,
        {
            "config/__init__.py": '"""config"""',
            "config/a.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from llem_nb.config.b import B\n",
            "config/b.py": "def f():\n    from llem_nb.config import a\n",
            "run/__init__.py": '"""run"""',
            "run/loop.py": "",
            "config/c.py": "from llem_nb.run.loop import x\n",
        },
    )
    edges = graph(root)
    assert find_cycle(edges) == ["llem_nb.config.a", "llem_nb.config.b", "llem_nb.config.a"]
    assert upward_imports(edges) == [
        "llem_nb.config.c (layer 1) imports llem_nb.run.loop (layer 6)"
    ]


@pytest.mark.parametrize("module", sorted(m for m in modules() if not m.endswith("__main__")))
def test_every_module_imports(module: str) -> None:
    import importlib

    importlib.import_module(module)


def test_dockerignore_names_only_paths_that_exist() -> None:
    repo = PACKAGE.parent
    kept = [
        line[1:].strip()
        for line in (repo / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    assert kept and [p for p in kept if not (repo / p).exists()] == []
