"""Print pip constraints that pin every base dependency of pyproject.toml to its floor.

``pandas>=2.0`` becomes ``pandas==2.0``: the oldest-versions analysis venv (mk/analysis.mk)
installs exactly what pyproject.toml claims to support, so a floor that does not work
fails a test instead of a user. Needs Python >= 3.11 (tomllib).
"""

from __future__ import annotations

import re
import sys
import tomllib

FLOOR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(?:,.*)?$")


def floors(pyproject: str) -> list[str]:
    with open(pyproject, "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    out = []
    for dep in deps:
        match = FLOOR.match(dep.split(";")[0])
        if match is None:
            raise SystemExit(f"{pyproject}: {dep!r} has no '>=' floor to pin")
        out.append(f"{match.group(1)}=={match.group(2)}")
    return out


if __name__ == "__main__":
    print("\n".join(floors(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
