"""StudyResult: what one run of a study produced, and every result in its directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem_nb.config import InvalidPoint
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.resolve import RunnerSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class StudyResult:
    """A study run: its dir, this run's results, and (``df``) every result in the dir.

    ``skipped`` counts experiments a resume found already done; ``interrupted`` is
    True when the run stopped early (KeyboardInterrupt or ``stop()``).
    """

    name: str
    dir: Path
    results: list[ExperimentResult] = field(default_factory=list)
    invalid: list[InvalidPoint] = field(default_factory=list)
    runners: dict[str, RunnerSpec] = field(default_factory=dict)
    interrupted: bool = False
    skipped: int = 0
    resumed: bool = False
    _df: Any = None

    @property
    def df(self) -> pd.DataFrame:
        if self._df is None:
            from llem_nb.results.frame import load_results

            self._df = load_results(self.dir)
        return self._df

    @property
    def failed(self) -> list[ExperimentResult]:
        return [r for r in self.results if r.status == "failed"]

    def _repr_html_(self) -> str:
        from llem_nb._display import study_result_html

        return study_result_html(self)
