"""``llem-nb report DIR [DIR …] [-o FILE]``: the one-file HTML report of results directories."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_report(args: argparse.Namespace) -> int:
    from llem_nb.reporting.build import report  # noqa: PLC0415 - keeps report light (matplotlib, numpy, pandas)

    out = report(args.dirs if len(args.dirs) > 1 else args.dirs[0], args.output, title=args.title)
    print(f"report: {out}")
    return 0


def add(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="write the HTML report of results directories (no GPU, no torch needed)"
    )
    report.add_argument("dirs", nargs="+", metavar="DIR", help="results or study directories")
    report.add_argument("-o", "--output", default="report.html", help="report file to write")
    report.add_argument("--title", default=None, help="page title (default: the study names)")
    report.set_defaults(func=cmd_report)
