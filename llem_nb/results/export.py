"""``export``: results as a Hive-partitioned Parquet dataset that DuckDB, Polars or Spark read.

``export(df_or_dir, "warehouse/")`` writes ``warehouse/study=<name>/part-0.parquet``,
one folder per study; exporting another study into the same place adds its folder and
replaces only the folders of the studies written again. Columns keep their types
(text, categories as dictionaries, UTC timestamps, list columns as lists) and each
field carries its unit in its Parquet metadata (``unit``). Query many studies at once::

    duckdb -c "SELECT study, batch_size, avg(energy_per_output_token_j)
               FROM read_parquet('warehouse/**/*.parquet', hive_partitioning = true)
               GROUP BY ALL ORDER BY ALL"
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np  # noqa: TID253 - the DataFrame layer is made of it
import pandas as pd  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb.errors import ConfigError
from llem_nb.results import columns as C
from llem_nb.results.scan import PathArg

PARTITION = "study"
FILE_TEMPLATE = "part-{i}.parquet"

log = logging.getLogger(__name__)


def export(df_or_dir: pd.DataFrame | PathArg | Iterable[PathArg], path: PathArg) -> Path:
    """Write ``df_or_dir`` (a ``load_results`` frame, or results dirs/files to load) to the
    Hive-partitioned Parquet dataset at ``path`` (partitioned by ``study``); returns ``path``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    if isinstance(df_or_dir, pd.DataFrame):
        frame = df_or_dir
    else:
        from llem_nb.results.frame import load_results  # noqa: PLC0415 - keeps export light (pydantic)

        frame = load_results(df_or_dir)
    if PARTITION not in frame.columns:
        raise ConfigError(
            f"export: the frame has no {PARTITION!r} column to partition by",
            field="df_or_dir",
            fix="pass a frame of load_results(...) or a results directory",
        )
    root = Path(os.fspath(path))
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"export: {root} is a file; a dataset is a directory",
            field="path",
            fix="pass a directory (it is created if missing)",
        )
    table = _table(frame, pa)
    partitioning = ds.partitioning(pa.schema([table.schema.field(PARTITION)]), flavor="hive")
    ds.write_dataset(
        table,
        root,
        format="parquet",
        partitioning=partitioning,
        basename_template=FILE_TEMPLATE,
        existing_data_behavior="delete_matching",
    )
    studies = table.column(PARTITION).unique()
    log.info("exported %d rows of %d studies to %s", len(frame), len(studies), root)
    return root


def _table(frame: pd.DataFrame, pa: Any) -> Any:
    """The frame as an Arrow table: plain columns, units in field metadata, no pandas attrs."""
    data = frame.copy()
    data.attrs = {}
    study = data[PARTITION].astype(object)
    data[PARTITION] = pd.array(
        [s if isinstance(s, str) and s else None for s in study], dtype=C.TEXT_DTYPE
    )
    for name in data.columns:
        column = data[name]
        if column.dtype == object and name not in C.LISTS and not _uniform(column):
            data[name] = pd.array(
                [None if _absent(v) else json.dumps(v, default=str) for v in column],
                dtype=C.TEXT_DTYPE,
            )
    table = pa.Table.from_pandas(data, preserve_index=False)
    units = C.units()
    fields = [
        pa.field(f.name, pa.list_(pa.string())) if f.name in C.LISTS else f for f in table.schema
    ]
    fields = [f.with_metadata({"unit": units[f.name]}) if f.name in units else f for f in fields]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _absent(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _uniform(column: pd.Series) -> bool:
    """All present values of one plain type (Arrow can store the column as is)."""
    types = {type(v) for v in column if not _absent(v)}
    return len(types) <= 1 and not (types & {dict, list, tuple})
