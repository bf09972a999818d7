"""One writer per study directory: an advisory ``flock`` on ``<dir>/.lock``.

The lock is held for the whole run and released by the OS when the process dies,
so a crashed run never leaves a stale lock. A second run (another kernel, another
process, or a second call in this one) fails fast with the holder's pid.
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from llem_nb.errors import PreflightError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class StudyLocked(PreflightError):
    """The study directory is being written by another run."""


class StudyLock:
    """``with StudyLock(dir):`` holds the directory; ``acquire`` raises ``StudyLocked``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> StudyLock:
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise StudyLocked(
                    f"study dir {self.directory} is in use by another run ({holder})",
                    fix="wait for that run to finish or stop it (its kernel or process); "
                    "the lock is released as soon as that process ends",
                ) from None
        os.ftruncate(fd, 0)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"
