"""Finding result files: the directories walked once, each file named once, cheaply.

A study dir of 100k results must be listed in a fraction of the time its files take
to parse: one ``os.scandir`` per directory, one ``stat`` per own result file (its size
and mtime decide whether the Parquet index still holds it), peers' files by name.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from llem_nb.errors import LlemWarning, ResultError
from llem_nb.results.importers import PEER_FILE_NAMES

PathArg = str | os.PathLike[str]
STAT_THREADS = 4
STAT_THREADS_FROM = 2000


class ResultsWarning(LlemWarning):
    """A file that looked like a result was skipped; the message names it and says why."""


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside llem_nb."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def skip(path: str, why: str, stacklevel: int = 0) -> None:
    """Warn that ``path`` was skipped, at the user's line (``stacklevel`` is not needed)."""
    warnings.warn(f"skipped {path}: {why}", ResultsWarning, stacklevel=user_stacklevel())


REPORT_NAME = "benchmark_report.json"
CONFIG_NAME = "benchmark.json"


class Found:
    """What a scan found: own result files by directory (with size and mtime), other files."""

    def __init__(self, own_suffix: str, *, stat: bool = True) -> None:
        self.own_suffix = own_suffix
        self.stat = stat
        self.dirs: dict[str, list[tuple[str, int, int]]] = {}
        self.files: list[str] = []
        self._explicit: dict[str, set[str]] = {}
        self._walked: dict[str, str] = {}
        """Real path of each walked directory → its key in ``dirs`` (if it held results)."""

    def add_file(self, path: str) -> None:
        real = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        name = os.path.basename(path)
        if name == REPORT_NAME and os.path.isfile(os.path.join(os.path.dirname(path), CONFIG_NAME)):
            # optimum-benchmark's report beside its benchmark.json is the same run, with
            # its config: read that one (once, however the two are named)
            path, name = os.path.join(os.path.dirname(path), CONFIG_NAME), CONFIG_NAME
        names = self._explicit.setdefault(real, set())
        walked = self._walked.get(real)
        if name in names or (walked and name in {e[0] for e in self.dirs[walked]}):
            return
        names.add(name)
        self.files.append(path)

    def walk(self, top: str, peer_names: frozenset[str]) -> None:
        """Own result files of ``top`` and every directory below it, and peers' files there."""
        stack = [top]
        while stack:
            directory = stack.pop()
            real = os.path.realpath(directory)
            if real in self._walked:
                continue
            named = self._explicit.get(real, ())
            suffix = self.own_suffix
            own: list[str] = []
            subdirs = []
            try:
                with os.scandir(directory) as it:
                    for entry in it:
                        name = entry.name
                        if name[0] == ".":
                            continue
                        if name.endswith(suffix):
                            own.append(name)
                        elif name in peer_names:
                            self.add_file(entry.path)
                        elif entry.is_dir():
                            subdirs.append(entry.path)
            except OSError:
                continue
            if named:
                own = [n for n in own if n not in named]
            if own:
                self.dirs[directory] = (
                    _stats(directory, own) if self.stat else [(n, -1, -1) for n in own]
                )
                self._walked[real] = directory
            else:
                self._walked[real] = ""
            stack.extend(sorted(subdirs, reverse=True))


def _stats(directory: str, names: list[str]) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of each file; many files are stat'ed by a few threads at once
    (``stat`` releases the GIL, and 100k of them one by one take a good part of a second)."""

    def chunk(part: list[str]) -> list[tuple[str, int, int]]:
        out = []
        for name in part:
            st = os.stat(name, dir_fd=fd)
            out.append((name, st.st_size, st.st_mtime_ns))
        return out

    fd = os.open(directory, os.O_RDONLY)
    try:
        if len(names) < STAT_THREADS_FROM:
            return chunk(names)
        step = len(names) // (4 * STAT_THREADS) + 1
        parts = [names[i : i + step] for i in range(0, len(names), step)]
        with ThreadPoolExecutor(STAT_THREADS) as pool:
            return [item for part in pool.map(chunk, parts) for item in part]
    finally:
        os.close(fd)


def scan(
    path_or_paths: PathArg | Iterable[PathArg], own_suffix: str, *, stat: bool = True
) -> Found:
    """Every result file named: directories walked, duplicates dropped, order kept.

    ``stat``: record each own file's size and mtime (the index needs them)."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        path_or_paths = [path_or_paths]
    found = Found(own_suffix, stat=stat)
    for item in path_or_paths:
        path = os.fspath(item)
        if os.path.isdir(path):
            found.walk(path, PEER_FILE_NAMES)
        elif os.path.isfile(path):
            found.add_file(path)
        else:
            raise ResultError(
                f"no result file or directory at {path!r}",
                fix="check the path; results are <dir>/<experiment_id>_c<NNN>.result.json files",
            )
    return found
