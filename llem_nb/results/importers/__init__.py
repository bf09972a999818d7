"""Peers' result files as rows of the same DataFrame, each with its ``origin``.

- ``llenergymeasure``: LLenergyMeasure ``result.json`` files, result schema 2.x;
- ``optimum_benchmark``: optimum-benchmark ``benchmark.json`` (config + report) and
  ``benchmark_report.json`` (report only);
- ``mlenergy``: the ML.ENERGY Leaderboard v3 table shipped in ``llem_nb/data/``.

Each importer maps only what means the same thing as llem_nb's column (README "What the
numbers mean"). Where a peer defines a figure differently (throughput over input + output
tokens, ITL with each request's first and last gap dropped, energy per call of a batch) it
converts when the file holds what is needed, else leaves the column missing and adds the
quality flag ``definition_differs`` with a warning naming the figure. Rows are plain
dicts of column → value (``point`` for the swept-like settings; ``label`` set here).
"""

from __future__ import annotations

import json
import os
from typing import Any

from llem_nb.results.importers import llenergymeasure, mlenergy, optimum_benchmark
from llem_nb.results.importers.common import Record, Skip, assign_cycles
from llem_nb.results.reference import load_reference

__all__ = ["PEER_FILE_NAMES", "assign_cycles", "read", "read_reference"]

PEER_FILE_NAMES = frozenset({"result.json", "benchmark.json", "benchmark_report.json"})


def read(path: str, skip: Skip) -> list[Record] | None:
    """Rows of a peer's file; None when the file is no peer's (the caller tries its own
    reader); [] when it is a peer's file that cannot be used (``skip`` says why)."""
    name = os.path.basename(path)
    if name.endswith(".csv"):
        return mlenergy.read_csv(path, skip)
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError, RecursionError) as exc:
        if name in PEER_FILE_NAMES:
            skip(path, f"cannot be read as JSON ({exc})", 6)
            return []
        return None
    if llenergymeasure.recognise(data):
        return llenergymeasure.records(data, path, skip)
    if optimum_benchmark.recognise(data):
        return optimum_benchmark.records(data, path, skip)
    return None


def read_reference(**filters: Any) -> list[Record]:
    """The ML.ENERGY table shipped with llem_nb (filtered like ``load_reference``) as rows."""
    frame = load_reference(**filters)
    rows = [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]
    return mlenergy.records(rows, "llem_nb/data")
