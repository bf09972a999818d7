"""When each decoding step finished on the device, in host ``perf_counter()`` seconds.

transformers calls a stopping criterion right after a step's token is chosen, but on a
GPU that is when the step's kernels were *queued*: the first call comes before the
prefill has run. A ``StepTimer`` records a marker per step without waiting for the
device and converts the markers to host times once ``generate`` has returned:

- ``CudaStepTimer``: one ``torch.cuda.Event(enable_timing=True)`` per step on the input
  device's current stream, and an anchor event recorded right after a synchronize at the
  batch's start, whose host time is known. A step's time is
  ``host_anchor + anchor.elapsed_time(event) / 1000``.
- ``HostStepTimer``: ``perf_counter()`` at the call; exact on the CPU, where execution
  is synchronous.

``StepClock`` is the stopping criterion that drives a timer and tells the meter, as soon
as the device has finished the first token, to read its energy counters.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol

Clock = Callable[[], float]
PhaseMarker = Callable[[str, float], None]


class StepTimer(Protocol):
    """Device completion times of a batch's decoding steps, on the host clock ``now``."""

    def now(self) -> float:
        """The host clock (``perf_counter`` unless a test injects another)."""
        ...

    def begin(self) -> None:
        """Start a batch: wait for the device to be idle and anchor its clock to ``now``."""
        ...

    def mark(self) -> None:
        """One step's work has been queued: record its completion, without waiting."""
        ...

    def done(self, step: int) -> float | None:
        """Host time step ``step`` finished if the device is already past it, else None.

        Never waits for the device.
        """
        ...

    def finish(self) -> float:
        """Wait for the device; host time at which all the batch's queued work finished."""
        ...

    def times(self) -> list[float]:
        """After ``finish``: host time each marked step finished on the device."""
        ...


class HostStepTimer:
    """Steps stamped with the host clock when marked: exact where execution is synchronous."""

    def __init__(self, clock: Clock = perf_counter) -> None:
        self._clock = clock
        self._stamps: list[float] = []

    def now(self) -> float:
        return self._clock()

    def begin(self) -> None:
        self._stamps = []

    def mark(self) -> None:
        self._stamps.append(self._clock())

    def done(self, step: int) -> float | None:
        return self._stamps[step] if step < len(self._stamps) else None

    def finish(self) -> float:
        return self._clock()

    def times(self) -> list[float]:
        return list(self._stamps)


class CudaStepTimer:
    """Steps timed by CUDA events on ``device``'s current stream, converted via one anchor.

    ``cuda`` is ``torch.cuda`` (a test passes a simulated device with the same calls).
    Marking costs one event record and no synchronisation; ``begin`` and ``finish`` each
    synchronise the device once per batch.
    """

    def __init__(
        self, device: int | None, *, cuda: Any = None, clock: Clock = perf_counter
    ) -> None:
        if cuda is None:
            import torch

            cuda = torch.cuda
        self._cuda = cuda
        self._device = device
        self._clock = clock
        self._anchor: Any = None
        self._anchor_s = 0.0
        self._events: list[Any] = []
        self._end: Any = None

    def now(self) -> float:
        return self._clock()

    def _record(self) -> Any:
        event = self._cuda.Event(enable_timing=True)
        event.record(self._cuda.current_stream(self._device))
        return event

    def begin(self) -> None:
        self._cuda.synchronize(self._device)
        before = self._clock()
        self._anchor = self._record()
        self._anchor_s = (before + self._clock()) / 2
        self._events = []
        self._end = None

    def mark(self) -> None:
        self._events.append(self._record())

    def _host_s(self, event: Any) -> float:
        return self._anchor_s + float(self._anchor.elapsed_time(event)) / 1000.0

    def done(self, step: int) -> float | None:
        if step >= len(self._events) or not self._events[step].query():
            return None
        return self._host_s(self._events[step])

    def finish(self) -> float:
        self._end = self._record()
        self._cuda.synchronize(self._device)
        return self._host_s(self._end)

    def times(self) -> list[float]:
        if self._end is None:
            raise RuntimeError("CudaStepTimer.times() before finish(): events may be pending")
        return [self._host_s(e) for e in self._events]


class StepClock:
    """A stopping criterion that never stops: it marks each step on a ``StepTimer``.

    transformers calls it once per generated token. Returning a plain ``False`` costs no
    device work and no sync. ``marker("first_token", t)`` is called once, at the first
    step at which the device has finished the first token (``t`` is then its device
    time), or by ``flush`` after ``generate`` when no later step came; it is a hint to
    read energy counters soon, not the recorded boundary.
    """

    def __init__(self, timer: StepTimer, marker: PhaseMarker | None = None) -> None:
        self.timer = timer
        self.steps = 0
        self._marker = marker
        self._hinted = marker is None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
        self.timer.mark()
        self.steps += 1
        if not self._hinted:
            self._hint(self.timer.done(0))
        return False

    def _hint(self, t: float | None) -> None:
        if t is not None and self._marker is not None:
            self._marker("first_token", t)
            self._hinted = True

    def flush(self, times: list[float]) -> None:
        """After ``generate``: send the first-token hint if no step could yet."""
        if not self._hinted and times:
            self._hint(times[0])


def step_timer_for(device: Any, clock: Clock = perf_counter) -> StepTimer:
    """CUDA events when ``device`` (a ``torch.device``) is a GPU, else the host clock."""
    if getattr(device, "type", None) == "cuda":
        return CudaStepTimer(device.index, clock=clock)
    return HostStepTimer(clock)
