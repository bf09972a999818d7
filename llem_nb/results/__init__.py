"""Results: the per-run schema, the atomic store and the DataFrame loader.

Names load on first use: a container or worker that only writes a result never
imports pandas (the DataFrame loader's dependency).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CANONICAL_COLUMNS": "llem_nb.results.frame",
    "ResultsWarning": "llem_nb.results.frame",
    "load_results": "llem_nb.results.frame",
    "ExperimentResult": "llem_nb.results.schema",
    "ResultStore": "llem_nb.results.store",
}

__all__ = [
    "CANONICAL_COLUMNS",
    "ExperimentResult",
    "ResultStore",
    "ResultsWarning",
    "load_results",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llem_nb.results' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from llem_nb.results.frame import CANONICAL_COLUMNS, ResultsWarning, load_results
    from llem_nb.results.schema import ExperimentResult
    from llem_nb.results.store import ResultStore
