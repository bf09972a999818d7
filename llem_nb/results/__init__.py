"""Results: the per-run schema, the atomic store and the DataFrame loader."""

from llem_nb.results.frame import CANONICAL_COLUMNS, ResultsWarning, load_results
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore

__all__ = [
    "CANONICAL_COLUMNS",
    "ExperimentResult",
    "ResultStore",
    "ResultsWarning",
    "load_results",
]
