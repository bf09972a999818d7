"""One measured NVML span (an idle baseline or a window): the reads, and energy from them.

A ``Span`` owns a ``Poller`` whose rounds read every GPU's counter (each read with its own
timestamp: GPUs are read one after another, ~ms each) and power, and keeps what came
back: a ``CounterTrack`` per GPU, the power samples, state snapshots, each GPU's clocks,
power limit and ECC count at both edges, the XID errors seen, and read errors by kind. A
transient power-read error costs one sample, never a valid counter (flag
``power_poll_gaps``); a GPU whose last reads all failed is lost, and its energy is None
rather than a guess. ``energy(k, t0, t1)`` is the one rule for every span: counter
interpolated at both edges, else the power integral (and a flag saying why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llem_nb.energy import nvml_facts as facts
from llem_nb.energy.base import PowerSample, StateSample
from llem_nb.energy.clock import Clock
from llem_nb.energy.counter import CounterTrack
from llem_nb.energy.device import GpuDevice, Nvml
from llem_nb.energy.integrate import PowerCurve
from llem_nb.energy.poller import Poller
from llem_nb.errors import NvmlError, NvmlNotSupported

EDGE_TICKS = 2


class Span:
    """The reads of one span over the given GPUs (see the module docstring)."""

    def __init__(
        self,
        nvml: Nvml,
        handles: Sequence[GpuDevice],
        instant: Sequence[bool],
        *,
        clock: Clock,
        poll_interval_s: float,
        state_interval_s: float,
    ) -> None:
        n = len(handles)
        self.nvml, self.handles, self.instant, self.clock = (
            nvml,
            list(handles),
            list(instant),
            clock,
        )
        self.tracks: list[CounterTrack | None] = [CounterTrack(self._power_of(k)) for k in range(n)]
        self.samples: list[PowerSample] = []
        self.states: list[StateSample] = []
        self.power_errors = [0] * n
        self.counter_errors = [0] * n
        self.first_error: dict[int, str] = {}
        self.last_ok = [[True, True] for _ in range(n)]
        self.problems: list[tuple[str, str]] = []
        self._edges: list[dict[str, dict[str, Any]]] = [{} for _ in range(n)]
        self._curves: dict[int, tuple[int, PowerCurve]] = {}
        self._xid: facts.XidWatch | None = None
        self.xids: list[tuple[int, int]] = []
        self.poller = Poller(
            self._round,
            self._state,
            self._counters,
            poll_interval_s=poll_interval_s,
            state_interval_s=state_interval_s,
            clock=clock,
        )

    @property
    def marks(self) -> list[tuple[str, float]]:
        return list(self.poller.marks)

    def problem(self, flag: str, warning: str) -> None:
        if (flag, warning) not in self.problems:
            self.problems.append((flag, warning))

    def _power_of(self, k: int) -> Callable[[float, float], float | None]:
        return lambda a, b: self.curve(k).integral(a, b)

    # ------------------------------------------------------------------ reads

    def _error(self, k: int, exc: Exception, kind: int) -> None:
        self.first_error.setdefault(k, str(exc))
        self.last_ok[k][kind] = False

    def _read_counter(self, k: int) -> None:
        track = self.tracks[k]
        if track is None:
            return
        before = self.clock.now()
        try:
            mj = self.handles[k].energy_mj()
        except NvmlNotSupported:
            self.tracks[k] = None
            return
        except NvmlError as exc:
            self.counter_errors[k] += 1
            self._error(k, exc, 0)
            return
        self.last_ok[k][0] = True
        track.add((before + self.clock.now()) / 2, mj / 1000.0)

    def _read_power(self, k: int) -> float | None:
        device = self.handles[k]
        try:
            mw = device.instant_power_mw() if self.instant[k] else device.power_mw()
        except NvmlNotSupported:
            return None
        except NvmlError as exc:
            self.power_errors[k] += 1
            self._error(k, exc, 1)
            return None
        self.last_ok[k][1] = True
        return mw / 1000.0

    def _round(self) -> None:
        before = self.clock.now()
        watts = []
        for k in range(len(self.handles)):
            self._read_counter(k)
            watts.append(self._read_power(k))
        self.samples.append(PowerSample((before + self.clock.now()) / 2, tuple(watts)))

    def _counters(self) -> None:
        for k in range(len(self.handles)):
            self._read_counter(k)

    def _state(self) -> None:
        self.states.append(facts.snapshot(self.handles, self.clock.now))

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        for k, handle in enumerate(self.handles):
            self._edges[k]["start"] = facts.edge_state(handle)
        self._xid = facts.XidWatch(self.nvml, self.handles)
        self.poller.start()

    def mark(self, label: str, t: float) -> None:
        self.poller.mark(label, t)

    def anchored(self, now: float) -> bool:
        """Every counter has updated ``EDGE_TICKS`` times before ``now`` (or has none): the
        window's first edge then lies after an update interval whose mean power is known."""
        return all(
            track is None or track.went_backwards or track.ticks_before(now) >= EDGE_TICKS
            for track in self.tracks
        )

    def closed_after(self, end: float) -> bool:
        """Every counter has updated ``EDGE_TICKS`` times after ``end`` (or has none, or its GPU
        stopped answering)."""
        return all(
            track is None
            or track.went_backwards
            or not self.last_ok[k][0]
            or track.ticks_after(end) >= EDGE_TICKS
            for k, track in enumerate(self.tracks)
        )

    def stop(self) -> None:
        if not self.poller.running:
            return
        self.poller.stop()
        for k, handle in enumerate(self.handles):
            self._edges[k]["end"] = facts.edge_state(handle)
        if self._xid is not None:
            self.xids = self._xid.drain()
            self._xid.close()
            self._xid = None

    # ------------------------------------------------------------------ energy

    def curve(self, k: int) -> PowerCurve:
        cached = self._curves.get(k)
        if cached is None or cached[0] != len(self.samples):
            cached = (len(self.samples), PowerCurve(self.samples, k))
            self._curves[k] = cached
        return cached[1]

    def power_integral(self, k: int, t0: float, t1: float) -> float | None:
        return self.curve(k).integral(t0, t1)

    def sample_count(self, k: int, t0: float, t1: float) -> int:
        return sum(1 for s in self.samples if t0 <= s.t <= t1 and s.watts[k] is not None)

    def lost(self, k: int) -> bool:
        """The GPU's last counter and power reads both failed: it stopped answering."""
        counter_ok, power_ok = self.last_ok[k]
        return not counter_ok and not power_ok

    def energy(
        self, k: int, t0: float, t1: float, label: str, name: str
    ) -> tuple[float | None, str]:
        """(joules over [t0, t1], method) for GPU ``k``; problems are recorded on the span."""
        power_j = self.power_integral(k, t0, t1)
        track = self.tracks[k]
        if self.lost(k):
            self.problem(
                "gpu_read_error", f"{label} ({name}) could not be read: {self.first_error[k]}"
            )
            return None, "counter" if track is not None else "power"
        if self.power_errors[k]:
            self.problem(
                "power_poll_gaps",
                f"{label}: {self.power_errors[k]} power read(s) failed "
                f"({self.first_error.get(k)}); the power curve bridges them",
            )
        if self.counter_errors[k]:
            self.problem(
                "counter_read_gaps",
                f"{label}: {self.counter_errors[k]} energy-counter read(s) failed "
                f"({self.first_error.get(k)})",
            )
        if track is None:
            self.problem(
                "counter_unsupported",
                f"{label} ({name}) has no NVML energy counter; energy is the integral "
                "of polled power",
            )
        elif track.went_backwards:
            self.problem("counter_reset", f"{label} energy counter went backwards; used power")
        else:
            curve = self.curve(k)
            energy = track.energy_between(t0, t1, curve.integral if len(curve) >= 2 else None)
            if energy is not None:
                return energy, "counter"
            self.problem(
                "counter_stale",
                f"{label}: the energy counter did not update around both edges of the span; "
                "used the power integral",
            )
        if power_j is None:
            self.problem("gpu_read_error", f"{label} ({name}) reports neither energy nor power")
        return power_j, "power"

    def edges_of(self, k: int) -> dict[str, dict[str, Any]]:
        return dict(self._edges[k])

    def edge_problems(self, labels: Sequence[str]) -> None:
        """Flags from what NVML said at the edges: power limit changed, ECC errors, XIDs."""
        for k, label in enumerate(labels):
            start, end = self._edges[k].get("start", {}), self._edges[k].get("end", {})
            a, b = start.get("power_limit_w"), end.get("power_limit_w")
            if a is not None and b is not None and a != b:
                self.problem(
                    "power_limit_changed",
                    f"{label}: power limit changed from {a:g} W to {b:g} W during the window",
                )
            a, b = start.get("ecc_uncorrected"), end.get("ecc_uncorrected")
            if a is not None and b is not None and b > a:
                self.problem(
                    "ecc_errors", f"{label}: {b - a} uncorrected ECC error(s) during the window"
                )
        for position, xid in self.xids:
            label = labels[position] if 0 <= position < len(labels) else "a measured GPU"
            self.problem("xid_error", f"{label}: NVIDIA XID {xid} (critical error) in the window")
