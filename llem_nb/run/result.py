"""StudyResult: what one run of a study produced, and every result in its directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem_nb.config.study import InvalidPoint
from llem_nb.results.html import flagged, frame_html, kv_table
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import RunnerSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class StudyResult:
    """A study run: its dir, this run's results, and (``df``) every result in the dir.

    ``skipped`` counts experiments a resume found already done (``failed_kept`` of them
    failed on their own and wait for ``retry_failed``); ``rerun_machine`` counts those it ran
    again because the machine failed them (disk, interrupt, crashed worker); ``interrupted``
    is True when the run stopped early (KeyboardInterrupt, SIGTERM or ``stop()``).
    """

    name: str
    dir: Path
    results: list[ExperimentResult] = field(default_factory=list)
    invalid: list[InvalidPoint] = field(default_factory=list)
    runners: dict[str, RunnerSpec] = field(default_factory=dict)
    interrupted: bool = False
    skipped: int = 0
    resumed: bool = False
    rerun_machine: int = 0
    failed_kept: int = 0
    _df: Any = None

    @property
    def df(self) -> pd.DataFrame:
        if self._df is None:
            from llem_nb.results.frame import load_results  # noqa: PLC0415 - keeps result light (numpy, pandas)

            self._df = load_results(self.dir)
        return self._df

    @property
    def failed(self) -> list[ExperimentResult]:
        return [r for r in self.results if r.status == "failed"]

    def _repr_html_(self) -> str:
        return study_result_html(self)


RESULT_COLUMNS = [
    "label", "batch_size", "runs", "status", "energy_source",
    "energy_per_output_token_j", "energy_per_output_token_net_j", "throughput_output_tok_s",
]  # fmt: skip


def _per_config(df: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: runs, status counts, mean metrics over successful cycles."""
    import pandas as pd

    rows = []
    for experiment_id, group in df.groupby("experiment_id", sort=False, observed=True):
        ok = group[group["status"] == "ok"]
        label = group["label"].iloc[0] if "label" in group else experiment_id
        row: dict[str, Any] = {"label": label, "runs": len(group)}
        row["batch_size"] = group["batch_size"].iloc[0] if "batch_size" in group else None
        counts = group["status"].value_counts()
        row["status"] = ", ".join(f"{n} {s}" for s, n in counts.items())
        row["energy_source"] = ", ".join(sorted(set(group["energy_source"].dropna())))
        for col in RESULT_COLUMNS[5:]:
            values = ok[col].dropna() if col in ok else pd.Series(dtype=float)
            row[col] = float(values.mean()) if len(values) else None
        rows.append(row)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def study_result_html(result: StudyResult) -> str:
    ok = sum(r.status == "ok" for r in result.results)
    failed = len(result.failed)
    rows: list[tuple[str, Any]] = [
        ("dir", str(result.dir)),
        ("this run", flagged(f"{ok} ok, {failed} failed", failed == 0)),
    ]
    if getattr(result, "skipped", 0):
        rows.append(("skipped (already done)", result.skipped))
    if result.rerun_machine:
        rows.append(("re-run (machine failures)", result.rerun_machine))
    if result.failed_kept:
        rows.append(
            ("failed, not re-run", flagged(f"{result.failed_kept} (retry_failed=True)", False))
        )
    title = f"StudyResult {result.name}" + (" (interrupted)" if result.interrupted else "")
    head = kv_table(title, rows)
    if not result.results and not getattr(result, "skipped", 0):
        return head
    df = result.df
    if df.empty or "experiment_id" not in df.columns:
        return head
    return head + frame_html(_per_config(df), max_rows=30)
