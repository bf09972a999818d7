"""Mutation testing of the core modules, one module at a time, with mutmut 3.

mutmut 3 mutates a copy of the tree under ``mutants/`` and picks tests by coverage, not by
file, so this driver gives each module a scratch copy of the tree whose ``[tool.mutmut]``
names that module and its mirrored tests only (mk/mutation.toml). It prints the score per
module (killed / non-equivalent mutants) and every survivor, and skips a module whose
source, tests and allow-list entries hash as at its last run (cache: .cache/mutation/).

Usage: python scripts/mutation.py [--force] [--min-score 0.9] [module.py ...]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # mutmut 3 pulls in toml there
    import toml as tomllib

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "mk" / "mutation.toml"
EQUIVALENT = ROOT / "mk" / "mutation-equivalent.txt"
CACHE = ROOT / ".cache" / "mutation"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
RESULT_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


def load_targets() -> dict[str, list[str]]:
    data = tomllib.loads(TARGETS.read_text())
    return {module: list(entry["tests"]) for module, entry in data["modules"].items()}


def load_equivalent() -> dict[str, str]:
    """Mutant name → why it is equivalent (behaviour no test can tell apart)."""
    out: dict[str, str] = {}
    for line in EQUIVALENT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            out[name] = reason.strip(" #-")
    return out


def mutant_prefix(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".") + "."


def fingerprint(module: str, tests: list[str], equivalent: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in [module, *tests, "tests/conftest.py"]:
        h.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes())
    prefix = mutant_prefix(module)
    h.update(json.dumps(sorted(k for k in equivalent if k.startswith(prefix))).encode())
    return h.hexdigest()


def scratch_tree(module: str, tests: list[str]) -> Path:
    """A copy of llem_nb/ and tests/ whose pyproject tells mutmut what to mutate and run."""
    work = CACHE / "work" / module.removesuffix(".py").replace("/", "_")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "llem_nb", work / "llem_nb", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    config = {
        "source_paths": ["llem_nb"],
        "only_mutate": [module],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-m", "not integration", "-q"],
        "pytest_add_cli_args_test_selection": tests,
        "use_git_change_detection": False,
    }
    lines = ["[tool.mutmut]", *(f"{k} = {json.dumps(v)}" for k, v in config.items())]
    lines += ["", "[tool.pytest.ini_options]", 'testpaths = ["tests"]', ""]
    (work / "pyproject.toml").write_text("\n".join(lines))
    return work


def mutant_bodies(path: Path) -> dict[str, str]:
    """Source of every function in mutmut's copy of a module (original and mutants)."""
    source = path.read_text()
    return {
        node.name: ast.get_source_segment(source, node) or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name
    }


def change(bodies: dict[str, str], mutant: str) -> str:
    """The lines a mutant changes, as ``old ⇒ new`` (much faster than ``mutmut show``)."""
    orig_name = mutant.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    old = bodies.get(orig_name, "").replace(orig_name, mutant, 1).splitlines()
    new = bodies.get(mutant, "").splitlines()
    diff = [
        line
        for line in difflib.unified_diff(old, new, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    removed = " ".join(x[1:].strip() for x in diff if x.startswith("-"))
    added = " ".join(x[1:].strip() for x in diff if x.startswith("+"))
    return f"{removed}  ⇒  {added}"


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(work)}
    cmd = [sys.executable, "-m", "mutmut", *args]
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)


def run_module(module: str, tests: list[str], equivalent: dict[str, str]) -> dict[str, object]:
    work = scratch_tree(module, tests)
    t0 = time.monotonic()
    ran = mutmut(work, "run", "--max-children", "1")
    listed = mutmut(work, "results", "--all", "true")
    statuses = {
        m.group(1): m.group(2).strip()
        for line in listed.stdout.splitlines()
        if (m := RESULT_LINE.match(line)) and m.group(1).startswith(mutant_prefix(module))
    }
    if not statuses or all(status == "not checked" for status in statuses.values()):
        sys.stderr.write(ran.stdout[-4000:] + ran.stderr[-4000:])
        raise SystemExit(f"mutmut checked no mutant of {module}: do its tests pass unmutated?")
    bodies = mutant_bodies(work / "mutants" / module)
    survivors = {}
    for name, status in sorted(statuses.items()):
        if status not in KILLED and name not in equivalent:
            survivors[name] = f"{status}: {change(bodies, name.rpartition('.')[2])}"
    counted = [n for n in statuses if n not in equivalent]
    killed = sum(1 for n in counted if statuses[n] in KILLED)
    return {
        "killed": killed,
        "counted": len(counted),
        "equivalent": len(statuses) - len(counted),
        "seconds": round(time.monotonic() - t0, 1),
        "survivors": survivors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules from mk/mutation.toml (default: all)")
    parser.add_argument("--force", action="store_true", help="re-run unchanged modules too")
    parser.add_argument("--min-score", type=float, default=0.9)
    args = parser.parse_args(argv)
    targets = load_targets()
    equivalent = load_equivalent()
    unknown = [m for m in args.modules if m not in targets]
    if unknown:
        parser.error(f"not in {TARGETS.relative_to(ROOT)}: {', '.join(unknown)}")
    CACHE.mkdir(parents=True, exist_ok=True)
    state_path = CACHE / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    below = []
    for module in args.modules or list(targets):
        tests = targets[module]
        digest = fingerprint(module, tests, equivalent)
        cached = state.get(module)
        if cached and cached["hash"] == digest and not args.force:
            result, note = cached["result"], "unchanged, cached"
        else:
            result, note = run_module(module, tests, equivalent), "ran"
            state[module] = {"hash": digest, "result": result}
            state_path.write_text(json.dumps(state, indent=1))
        score = result["killed"] / result["counted"] if result["counted"] else 1.0
        print(
            f"{module}: {result['killed']}/{result['counted']} killed = {score:.0%} "
            f"({result['equivalent']} equivalent; {note}, {result['seconds']} s)",
            flush=True,
        )
        for name, text in result["survivors"].items():
            print(f"  {name.rpartition('.')[2]} {text}")
        if score < args.min_score:
            below.append(module)
    if below:
        print(f"below {args.min_score:.0%}: {', '.join(below)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
