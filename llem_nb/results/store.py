"""ResultStore: one JSON file per experiment × cycle, written atomically.

A long sweep must survive a crash or a full disk without leaving a half-written
result that a later ``load_results`` would misread, and a finished result is
never overwritten. So each result is written to a hidden temp file in the same
directory, fsynced, then published under its final name with ``os.link`` (which
fails instead of replacing an existing file), and the directory is fsynced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from llem_nb.errors import ResultError
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.timeseries import save_timeseries

RESULT_SUFFIX = ".result.json"
TMP_MARKER = ".tmp-"

# link() errors that mean "this filesystem has no hard links", not "cannot write".
_NO_HARDLINKS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}
)


class ResultStore:
    """A directory of ``{experiment_id}_c{cycle:03d}.result.json`` files."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.directory)!r})"

    def path_for(self, experiment_id: str, cycle: int) -> Path:
        if (
            not experiment_id
            or experiment_id.startswith(".")
            or any(sep in experiment_id for sep in ("/", "\\", os.sep))
        ):
            raise ResultError(
                f"experiment_id {experiment_id!r} cannot name a result file",
                fix="use the config's experiment_id (12 hex digits of its config_hash)",
            )
        return self.directory / f"{experiment_id}_c{cycle:03d}{RESULT_SUFFIX}"

    def exists(self, experiment_id: str, cycle: int) -> bool:
        return self.path_for(experiment_id, cycle).exists()

    def iter_paths(self) -> Iterator[Path]:
        """Finished result files, sorted by name; temp leftovers are not listed."""
        if not self.directory.is_dir():
            return iter(())
        paths = (p for p in self.directory.glob(f"*{RESULT_SUFFIX}") if not p.name.startswith("."))
        return iter(sorted(paths))

    def write(self, result: ExperimentResult, *, sync: bool = True) -> Path:
        """Publish ``result`` atomically under its final name and return that path.

        Raises ``ResultError`` when the result already exists or the write fails
        (disk full, no permission); earlier results are left untouched either way.
        ``sync=False`` skips the fsyncs (still atomic against a process crash; a power
        cut may lose the file): the study loop batches them, and resume re-checks files.
        """
        final = self.path_for(result.experiment_id, result.cycle)
        if final.exists():
            raise self._exists_error(final)
        tmp = self.directory / f".{final.name}{TMP_MARKER}{secrets.token_hex(6)}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            save_timeseries(result, final)
            data = result.to_json().encode()
            _write_synced(tmp, data, sync)
            _publish(tmp, final)
        except OSError as exc:
            _remove(tmp)
            if isinstance(exc, FileExistsError) and final.exists():
                raise self._exists_error(final) from None
            cause = exc.strerror or str(exc)
            raise ResultError(
                f"could not write result {final}: {cause} (errno {exc.errno})",
                fix="free disk space or fix the directory's permissions, then re-run this cycle",
            ) from exc
        _remove(tmp)
        if sync:
            _fsync_dir(self.directory)
        return final

    @staticmethod
    def _exists_error(final: Path) -> ResultError:
        return ResultError(
            f"result {final} already exists; a finished result is never overwritten",
            fix="delete or move that file to measure this cycle again, "
            "or write to a new results directory",
        )


def _write_synced(path: Path, data: bytes, sync: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, final: Path) -> None:
    """Give ``tmp`` its final name without ever replacing an existing file."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARDLINKS:
            raise
        # No hard links here (some network or FAT filesystems): rename is still atomic,
        # only the no-overwrite guarantee narrows to the check just before it.
        if final.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(final)) from None
        os.rename(tmp, final)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable; best effort where directories cannot be opened."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
