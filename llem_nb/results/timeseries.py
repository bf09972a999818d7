"""Per-GPU timeseries of a measured window, saved as Parquet next to the result.

Rows (long format, one per GPU every 1/10 s at most, built by ``measure.series``): ``t_s`` (seconds
from the window start), ``gpu``, ``gpu_index``, ``power_w`` (mean power until the next
row, energy-preserving), ``temperature_c``, ``sm_clock_mhz``, ``memory_used_mib``,
``throttle_reasons`` (NVML bitmask), ``phase`` (prefill / decode / "" outside the window).
The window length and phase intervals travel in the file's metadata and in
``DataFrame.attrs``.

The harness leaves the timeseries on the result in memory; whoever writes the result
JSON (``ResultStore.write``, the runner entrypoint) calls ``save_timeseries`` first,
which writes ``<stem>.timeseries.parquet`` beside it and records its file name in
``result.timeseries_file``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem_nb.errors import ResultError

if TYPE_CHECKING:
    import pandas as pd

    from llem_nb.results.schema import ExperimentResult

SUFFIX = ".timeseries.parquet"
MAX_HZ = 10.0
META_KEY = b"llem_nb"
COLUMNS = (
    "t_s", "gpu", "gpu_index", "power_w", "temperature_c", "sm_clock_mhz",
    "memory_used_mib", "throttle_reasons", "phase",
)  # fmt: skip
PYARROW_FIX = "pip install pyarrow (llem_nb writes timeseries as Parquet)"


@dataclass
class Timeseries:
    """Columns (``COLUMNS``) as lists, and the metadata that goes with them."""

    columns: dict[str, list[Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["t_s"])

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame({name: self.columns[name] for name in COLUMNS})
        for name in ("power_w", "temperature_c", "sm_clock_mhz", "memory_used_mib"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        frame["throttle_reasons"] = frame["throttle_reasons"].astype("Int64")
        frame.attrs.update(self.meta)
        return frame

    def write(self, path: Path) -> None:
        """Write atomically (temp file, then rename) so a reader never sees half a file."""
        pa, pq = _pyarrow()
        schema = _schema(pa).with_metadata({META_KEY: json.dumps(self.meta).encode()})
        table = pa.table({name: self.columns[name] for name in COLUMNS}, schema=schema)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def read(cls, path: Path) -> Timeseries:
        _, pq = _pyarrow()
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(META_KEY)
        return cls(table.to_pydict(), json.loads(raw) if raw else {})


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ResultError("writing or reading a timeseries needs pyarrow", fix=PYARROW_FIX) from exc
    return pa, pq


def _schema(pa: Any) -> Any:
    kinds = {"gpu": pa.string(), "phase": pa.string(), "gpu_index": pa.int64()}
    kinds["throttle_reasons"] = pa.int64()
    return pa.schema([(name, kinds.get(name, pa.float64())) for name in COLUMNS])


def timeseries_path_for(result_path: Path) -> Path:
    """``X.result.json`` / ``X_result.json`` → ``X.timeseries.parquet`` beside it."""
    stem = result_path.name.removesuffix(".json").removesuffix(".result").removesuffix("_result")
    return result_path.with_name(stem + SUFFIX)


def save_timeseries(result: ExperimentResult, result_path: Path) -> None:
    """Write the result's in-memory timeseries beside ``result_path``; record its name.

    Without pyarrow the result keeps a warning instead of a file (never a crash).
    """
    series = getattr(result, "_timeseries", None)
    if series is None:
        return
    path = timeseries_path_for(Path(result_path))
    try:
        series.write(path)
    except (ResultError, ValueError, TypeError) as exc:
        why = exc.message if isinstance(exc, ResultError) else f"{type(exc).__name__}: {exc}"
        result.warnings = [*result.warnings, f"timeseries not saved: {why}"]
        return
    result.timeseries_file = path.name


def restore_timeseries(result: ExperimentResult, result_path: Path) -> None:
    """Load the timeseries a child process saved beside ``result_path`` back into memory."""
    name = result.timeseries_file
    if not name:
        return
    path = Path(result_path).with_name(name)
    result.timeseries_file = None
    try:
        result._timeseries = Timeseries.read(path)
    except (ResultError, OSError, ValueError) as exc:
        why = exc.message if isinstance(exc, ResultError) else f"{type(exc).__name__}: {exc}"
        result.warnings = [*result.warnings, f"timeseries lost on the way back: {why}"]


def load_timeseries(row_or_result: Any, directory: str | os.PathLike[str] | None = None) -> Any:
    """The timeseries of one result as a DataFrame (metadata in ``.attrs``).

    Accepts a ``load_results`` row (its ``timeseries_path``), an ``ExperimentResult``
    (with the directory holding its files, or still carrying it in memory), or a path.
    """
    from llem_nb.results.schema import ExperimentResult  # noqa: PLC0415 - keeps timeseries light (pydantic)

    if isinstance(row_or_result, (str, os.PathLike)):
        path = Path(row_or_result)
    elif isinstance(row_or_result, ExperimentResult):
        memory = getattr(row_or_result, "_timeseries", None)
        if memory is not None and directory is None:
            return memory.to_frame()
        name = row_or_result.timeseries_file
        if not name:
            raise ResultError(
                f"result {row_or_result.experiment_id} has no timeseries "
                f"(energy source {row_or_result.energy_source!r} keeps none)",
                fix="timeseries are recorded by the NVML meter on a GPU",
            )
        if directory is None:
            raise ResultError(
                "the result names its timeseries file but not where it is",
                fix="pass the study directory: load_timeseries(result, study_result.dir)",
            )
        path = Path(directory) / name
    else:
        value = row_or_result.get("timeseries_path") if hasattr(row_or_result, "get") else None
        if not isinstance(value, str) or not value:
            raise ResultError(
                "this row has no timeseries_path (no timeseries was recorded)",
                fix="pass a row of llem_nb.load_results(...) measured with NVML on a GPU",
            )
        path = Path(value)
    if not path.is_file():
        raise ResultError(f"no timeseries file at {path}", fix="check the results directory")
    return Timeseries.read(path).to_frame()
