"""``python -m llem_nb.cli.readiness [--fake]``: the GPU readiness table (issue 24's checks).

One row per known GPU-host pitfall, each ok, FAIL or skipped with the reason; ``--fake`` runs
every check on the CPU against the NVML simulator. Exit codes: 0 all ok or skipped, 1 a
check failed, 2 no GPU (and no ``--fake``).
"""

from __future__ import annotations

import argparse
import sys

from llem_nb.gpu_check.readiness import readiness, table
from llem_nb.gpu_check.steps import NoGpu, require_gpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llem-nb gpu-check readiness", description=__doc__)
    parser.add_argument("--fake", action="store_true", help="simulated GPUs on the CPU")
    args = parser.parse_args(argv)
    if not args.fake:
        try:
            require_gpu()
        except NoGpu as exc:
            print(f"readiness needs an NVIDIA GPU (or --fake): {exc}", file=sys.stderr)
            return 2
    rows = readiness(args.fake)
    print(table(rows))
    return 1 if any(r.status == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
