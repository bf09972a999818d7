"""The in-process experiment deadline that backends honour: ``timeout_s`` without a child.

A subprocess or container is killed when its experiment runs past ``timeout_s``; an
experiment in the kernel cannot be. So the local runner opens a ``Deadline`` around the
experiment (``enforce``) and every backend's generation loop asks ``current()`` whether it
has passed: transformers through a stopping criterion checked after each token, vLLM
between engine steps (then it aborts its requests), the fake backend at each step. The
runner then reports the experiment as timed out; its cut-short numbers are never a result.
A model load in progress cannot be interrupted in the kernel: the deadline is noticed at
the first token after it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

_CURRENT: ContextVar[Deadline | None] = ContextVar("llem_deadline", default=None)


class Deadline:
    """``timeout_s`` from now on the clock ``now`` (``perf_counter`` unless a test injects one)."""

    def __init__(self, timeout_s: float, now: Callable[[], float] = time.perf_counter) -> None:
        self.timeout_s = timeout_s
        self._now = now
        self.at = now() + timeout_s
        self.hit = False

    def remaining_s(self) -> float:
        return self.at - self._now()

    @property
    def passed(self) -> bool:
        """True once the deadline has passed (and from then on)."""
        self.hit = self.hit or self.remaining_s() <= 0
        return self.hit


@contextlib.contextmanager
def enforce(
    timeout_s: float | None, now: Callable[[], float] = time.perf_counter
) -> Iterator[Deadline | None]:
    """Make a ``Deadline`` of ``timeout_s`` current for this thread's code (None: none)."""
    deadline = None if timeout_s is None else Deadline(timeout_s, now)
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


def current() -> Deadline | None:
    """The deadline of the experiment running here, if any."""
    return _CURRENT.get()


def passed() -> bool:
    """True when the current experiment's deadline has passed."""
    deadline = _CURRENT.get()
    return deadline is not None and deadline.passed


class StopAtDeadline:
    """A transformers stopping criterion: stop every sequence once the deadline passed."""

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
        return passed()
