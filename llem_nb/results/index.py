"""A directory's Parquet index: its result rows, ready to load without parsing every JSON file.

``<dir>/.llem_index.parquet`` holds the typed rows of the directory's own result files
plus, per row, the file's name, size and mtime. A load compares those with the files
now there: an unchanged directory is one Parquet read; new, changed or deleted files
are parsed or dropped and the index rewritten (atomically, temp file then rename).
The run loop refreshes it when a study ends, so the first ``load_results`` of a study
dir is already fast. A directory that cannot be written is simply not indexed; an
index that cannot be read, or was written by another index format, another llem_nb
version or before a column was added, is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np  # noqa: TID253 - the DataFrame layer is made of it
import pandas as pd  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb._version import __version__
from llem_nb.results import columns as C
from llem_nb.results.rows import combine, conform
from llem_nb.results.scan import ResultsWarning, user_stacklevel

INDEX_NAME = ".llem_index.parquet"
FORMAT = 3
_META_KEY = b"llem_nb_index"
_FILE, _SIZE, _MTIME = "_index_file", "_index_size", "_index_mtime_ns"
_MANIFEST = (_FILE, _SIZE, _MTIME)
_KNOWN = frozenset((*C.CANONICAL_COLUMNS, *C.EXTRA_COLUMNS))

Entry = tuple[str, int, int]
"""(file name, size in bytes, mtime in ns) of one result file."""
Parse = Callable[..., pd.DataFrame]
"""``parse(paths, skipped, source=True)``: the typed rows of those files (``frame._own_frame``)."""

log = logging.getLogger(__name__)


def cached_rows(
    directory: str, entries: Sequence[Entry], parse: Parse, *, write: bool = True
) -> pd.DataFrame:
    """The typed rows of ``entries`` (files in ``directory``): from the index where it is
    current, else parsed with ``parse`` (and the index rewritten when ``write``).

    Files skipped when the index was built are remembered with their reason and warned
    about again on every load, as a parse would.
    """
    path = os.path.join(directory, INDEX_NAME)
    cached, skipped = _read(path)
    keep: pd.DataFrame | None = None
    known: set[str] = set()
    still_bad: dict[str, list[Any]] = {}
    if cached is not None:
        current = _current(cached, entries)
        if skipped:
            stats = {name: (size, mtime) for name, size, mtime in entries if name in skipped}
            still_bad = {n: v for n, v in skipped.items() if stats.get(n) == tuple(v[:2])}
        for name, (_, _, why) in still_bad.items():
            warnings.warn(
                f"skipped {os.path.join(directory, name)}: {why}",
                ResultsWarning,
                stacklevel=user_stacklevel(),
            )
        # every cached row's file is unchanged, and every file is a cached row or a bad one
        if current.all() and len(cached) + len(still_bad) == len(entries):
            return _strip(cached)
        keep = cached[current]
        known = set(keep[_FILE])
    wanted = {name: (size, mtime) for name, size, mtime in entries}
    todo = sorted(n for n in wanted if n not in known and n not in still_bad)
    reasons: dict[str, str] = {}
    fresh = parse([os.path.join(directory, n) for n in todo], reasons, source=True)
    fresh = _with_manifest(fresh, wanted)
    bad = {**still_bad, **{n: [*wanted[n], why] for n, why in reasons.items() if n in wanted}}
    merged = combine([_strip(keep, drop=False), fresh]) if keep is not None and len(keep) else fresh
    log.debug(
        "index %s: %d rows reused, %d files parsed", path, len(merged) - len(fresh), len(todo)
    )
    if write:
        _write(path, merged, bad)
    return _strip(merged)


def _current(cached: pd.DataFrame, entries: Sequence[Entry]) -> np.ndarray:
    """For each cached row: is its file still there with the same size and mtime?"""
    names, sizes, mtimes = zip(*entries, strict=True) if entries else ((), (), ())
    index = pd.Index(cached[_FILE], dtype=object)
    if not index.is_unique:
        return np.zeros(len(cached), dtype=bool)
    where = index.get_indexer(pd.Index(names, dtype=object))
    found = where >= 0
    rows = where[found]
    same = np.zeros(len(cached), dtype=bool)
    same[rows] = (cached[_SIZE].to_numpy()[rows] == np.asarray(sizes, dtype=np.int64)[found]) & (
        cached[_MTIME].to_numpy()[rows] == np.asarray(mtimes, dtype=np.int64)[found]
    )
    return same


def refresh(directory: str, own_suffix: str, parse: Parse) -> None:
    """Bring ``directory``'s index up to date with its result files, without warnings."""
    entries: list[Entry] = []
    with os.scandir(directory) as it:
        for entry in it:
            if entry.name.endswith(own_suffix) and not entry.name.startswith("."):
                st = entry.stat()
                entries.append((entry.name, st.st_size, st.st_mtime_ns))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cached_rows(directory, sorted(entries), parse)


def _with_manifest(frame: pd.DataFrame, wanted: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Each row's file size and mtime beside its file name (``_index_file``)."""
    names = [str(n) for n in frame[_FILE]]
    frame = frame.copy()
    frame[_FILE] = np.array(names, dtype=object)
    frame[_SIZE] = np.array([wanted.get(n, (-1, -1))[0] for n in names], dtype=np.int64)
    frame[_MTIME] = np.array([wanted.get(n, (-1, -1))[1] for n in names], dtype=np.int64)
    return frame


def _strip(frame: pd.DataFrame, *, drop: bool = True) -> pd.DataFrame:
    out = frame.drop(columns=list(_MANIFEST)) if drop else frame
    out = out.reset_index(drop=True)
    out.attrs["units"] = C.units()
    return out


def _write(path: str, frame: pd.DataFrame, skipped: dict[str, list[Any]]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        stored = frame.copy()
        stored.attrs = {}
        table = pa.Table.from_pandas(stored, preserve_index=False)
        fields = [
            pa.field(f.name, pa.list_(pa.string())) if f.name in C.LISTS else f
            for f in table.schema
        ]
        table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
        meta = dict(table.schema.metadata or {})
        columns = [c for c in frame.columns if c not in _MANIFEST]
        info = {"format": FORMAT, "llem_nb": __version__, "skipped": skipped, "columns": columns}
        meta[_META_KEY] = json.dumps(info).encode()
        # uncompressed: the index is read far more often than written, and reads faster so
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="none")
        os.replace(tmp, path)
    except Exception as exc:  # a read-only dir, a column pyarrow cannot store: no index
        log.debug("index %s not written: %r", path, exc)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _read(path: str) -> tuple[pd.DataFrame | None, dict[str, list[Any]]]:
    """The index's typed rows with their manifest, and its skipped files; (None, {}) when
    absent, of another format or unreadable."""
    if not os.path.isfile(path):
        return None, {}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        if (
            meta.get("format") != FORMAT
            or meta.get("llem_nb") != __version__
            or not set(meta.get("columns", ())) >= _KNOWN
            or _FILE not in table.column_names
        ):
            return None, {}  # another format, another llem_nb or columns since added: rebuild
        lists = {
            name: table.column(name).to_pylist() for name in C.LISTS if name in table.column_names
        }
        manifest = {name: table.column(name).to_numpy(zero_copy_only=False) for name in _MANIFEST}
        table = table.drop_columns([*lists, *_MANIFEST])
        mapper = {pa.string(): C.TEXT_DTYPE, pa.large_string(): C.TEXT_DTYPE}.get
        raw = table.to_pandas(types_mapper=mapper)
        out = {name: conform(name, raw[name]) for name in raw.columns}
    except Exception as exc:
        log.debug("index %s unreadable, rebuilding: %r", path, exc)
        return None, {}
    order = [n for n in meta.get("columns", []) if n in out or n in lists] or list(out)
    out = {name: C.lists(lists[name]) if name in lists else out[name] for name in order}
    out[_FILE] = manifest[_FILE].astype(object)
    out[_SIZE] = manifest[_SIZE].astype(np.int64)
    out[_MTIME] = manifest[_MTIME].astype(np.int64)
    frame = pd.DataFrame(out, copy=False)
    frame.columns = pd.Index(list(out), dtype=object)
    return frame, dict(meta.get("skipped") or {})


def index_path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / INDEX_NAME
