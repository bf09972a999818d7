"""SIGTERM as Ctrl-C: what a scheduler, ``docker stop`` or ``kill`` sends ends a command cleanly.

Without a handler SIGTERM kills the process on the spot: nothing journaled, the subprocess
worker orphaned (it leads its own session, so the signal never reaches it) and temp dirs
left behind. ``sigterm_as_interrupt`` turns the first SIGTERM into ``Terminated``, a
``KeyboardInterrupt``, so every path that cleans up after Ctrl-C (the study loop journals
``interrupted``, runners kill their children and remove their exchange dirs) runs; the
command then exits 143 (128 + SIGTERM). Later SIGTERMs during that clean-up are ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as on Ctrl-C, then end the process with 143."""


class SigtermWatch:
    """Whether SIGTERM arrived while ``sigterm_as_interrupt`` was active."""

    def __init__(self) -> None:
        self.fired = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.fired:
            return
        self.fired = True
        raise Terminated("terminated by SIGTERM")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[SigtermWatch]:
    """Within the block (main thread only), SIGTERM raises ``Terminated``; the previous
    handler comes back afterwards."""
    watch = SigtermWatch()
    if threading.current_thread() is not threading.main_thread():
        yield watch
        return
    previous = signal.signal(signal.SIGTERM, watch.handle)
    try:
        yield watch
    finally:
        signal.signal(signal.SIGTERM, previous)
