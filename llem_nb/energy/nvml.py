"""NvmlMeter: GPU energy from NVML's total-energy counter, with power polling alongside.

Per GPU, the energy over a span is read off the counter (``nvmlDeviceGetTotalEnergyConsumption``,
mJ, Volta and newer) — not as the difference of two reads, since the counter updates in
steps on many GPUs, but at the span's exact edges: every read is kept with its own
timestamp (``CounterTrack``), the updates are located, and the energy at each edge is
interpolated between the updates around it, shaped by the power curve. A span opens only
once every counter has updated, and closes only once every counter has updated after its
end, so both edges lie between known updates. Idle baselines and windows use the same
rule on the same clock, so ``idle W × window`` and the gross energy cover the same time.

A background poller (``Poller``) reads every GPU's counter and power each round
(instantaneous power where the driver offers it, else ``nvmlDeviceGetPowerUsage``, a 1 s
average on Ampere and newer), snapshots state, and reads the counters again when the
backend marks a phase boundary. The trapezoid over the power samples is the cross-check,
and the energy where the counter is unsupported (flag ``counter_unsupported``), went
backwards, or never updated around an edge. NVML errors become ``MeterError`` or
per-device flags here, in one place.
"""

from __future__ import annotations

from typing import Any

from llem_nb.energy import nvml_facts as facts
from llem_nb.energy.base import DeviceReading, EnergyMeter, EnergyReading
from llem_nb.energy.clock import Clock
from llem_nb.energy.crosscheck import averaged_check_j
from llem_nb.energy.device import GpuDevice, Nvml, NvmlLike, as_nvml
from llem_nb.energy.nvml_span import Span
from llem_nb.errors import MeterError, NvmlError

EDGE_WAIT_S = 1.0
COUNTER_PERIODS_PER_WINDOW = 100

__all__ = ["NvmlMeter"]


class NvmlMeter(EnergyMeter):
    """Energy of the given NVML GPU indices (None = all); labels ``gpu{index}``."""

    source = "nvml"

    def __init__(
        self,
        gpu_indices: list[int] | None,
        *,
        poll_interval_s: float = 0.05,
        state_interval_s: float = 0.5,
        nvml: NvmlLike = None,
        clock: Clock | None = None,
        edge_wait_s: float = EDGE_WAIT_S,
    ) -> None:
        """``nvml``: the door (``Nvml``) or a pynvml-like module; None = the real NVML."""
        super().__init__(clock)
        self.gpu_indices = list(gpu_indices) if gpu_indices is not None else None
        self.poll_interval_s = poll_interval_s
        self.state_interval_s = max(state_interval_s, poll_interval_s)
        self.edge_wait_s = edge_wait_s
        self.driver_version = ""
        self._given = nvml
        self._door: Nvml | None = nvml if isinstance(nvml, Nvml) else None
        self._open = False
        self._handles: list[GpuDevice] = []
        self._info: list[tuple[int, str, str]] = []
        self._mig: list[bool] = []
        self._instant: list[bool] = []
        self._power_avg: list[float | None] = []
        self._idle: dict[str, float] = {}
        self._span: Span | None = None

    # ------------------------------------------------------------------ opening

    def _ensure_open(self) -> None:
        if self._open:
            return
        nv = self.nvml
        nv.init()
        self._open = True
        try:
            count = nv.device_count()
            indices = self.gpu_indices if self.gpu_indices is not None else list(range(count))
            if any(not 0 <= i < count for i in indices):
                raise MeterError(
                    f"NVML GPU indices {indices} do not all exist ({count} GPU(s) here)",
                    fix="pass NVML indices, e.g. from visible_nvml_indices() or `nvidia-smi -L`",
                )
            self.driver_version = nv.driver_version()
            self._handles = [nv.device(i) for i in indices]
            self._info = [(d.index, d.name(), d.uuid()) for d in self._handles]
            self._mig = [d.mig_enabled() for d in self._handles]
            self._instant = [self._instant_mw(d) is not None for d in self._handles]
            self._power_avg = [
                facts.power_avg_s(d, instant)
                for d, instant in zip(self._handles, self._instant, strict=True)
            ]
        except NvmlError as exc:
            self.close()
            raise MeterError(f"NVML could not open the GPUs: {exc.message}") from exc
        except MeterError:
            self.close()
            raise

    @property
    def nvml(self) -> Nvml:
        """The door this meter reads through (the real NVML unless one was given)."""
        if self._door is None:
            self._door = as_nvml(self._given)
        return self._door

    @staticmethod
    def _instant_mw(device: GpuDevice) -> float | None:
        """Instantaneous power (mW) from the field API; None where the driver lacks it."""
        try:
            return device.instant_power_mw() or None
        except NvmlError:
            return None

    def _new_span(self) -> Span:
        self._ensure_open()
        return Span(
            self.nvml,
            self._handles,
            self._instant,
            clock=self.clock,
            poll_interval_s=self.poll_interval_s,
            state_interval_s=self.state_interval_s,
        )

    # ------------------------------------------------------------------ spans

    def _open_span(self) -> Span:
        """Start polling and wait (at most ``edge_wait_s``) until every counter has updated."""
        span = self._new_span()
        span.start()
        deadline = self.clock.now() + self.edge_wait_s
        while not span.anchored(self.clock.now()) and self.clock.now() < deadline:
            self.clock.sleep(self.poll_interval_s / 2)
        return span

    def _close_span(self, span: Span, end: float) -> None:
        """Keep polling until every counter has updated after ``end`` (at most ``edge_wait_s``)."""
        deadline = self.clock.now() + self.edge_wait_s
        while not span.closed_after(end) and self.clock.now() < deadline:
            self.clock.sleep(self.poll_interval_s / 2)
        span.stop()

    def _device(self, span: Span, k: int, t0: float, t1: float) -> DeviceReading:
        """GPU ``k``'s energy over [t0, t1]; its problems go to ``span.problems``."""
        index, name, uuid = self._info[k]
        label = f"gpu{index}"
        energy_j, method = span.energy(k, t0, t1, label, name)
        track = span.tracks[k]
        reading = DeviceReading(
            label,
            energy_j,
            method,
            index,
            uuid,
            name,
            span.sample_count(k, t0, t1),
            None if span.lost(k) else span.power_integral(k, t0, t1),
        )
        reading.idle_power_w = self._idle.get(label)
        reading.mig = self._mig[k]
        reading.power_method = "instant" if self._instant[k] else "power_usage"
        reading.power_avg_s = self._power_avg[k]
        reading.counter_update_s = track.update_period_s if track is not None else None
        if method == "counter" and track is not None:
            reading.check_j = averaged_check_j(track, span.curve(k), t0, t1, self._power_avg[k])
        reading.edges = span.edges_of(k)
        if (
            method == "counter"
            and track is not None
            and not track.regular
            and track.update_period_s
            and t1 - t0 < COUNTER_PERIODS_PER_WINDOW * track.update_period_s
        ):
            span.problem(
                "counter_coarse",
                f"{label}: energy counter updates every {track.update_period_s * 1000:.0f} ms "
                f"at irregular instants; a {t1 - t0:.2f} s window is under "
                f"{COUNTER_PERIODS_PER_WINDOW} updates, so its edges are uncertain",
            )
        if self._mig[k]:
            span.problem(
                "mig_whole_gpu",
                f"{label} is in MIG mode: NVML energy covers the whole GPU, "
                "including other MIG instances",
            )
        return reading

    # ------------------------------------------------------------------ window

    def _start(self) -> None:
        self._span = self._open_span()

    def mark(self, label: str, t: float) -> None:
        """Ask the poller to read the counters soon, for a boundary at ``t``."""
        span = self._span
        if span is not None and self._t0 is not None:
            span.mark(label, t)

    def _stop(self, window_s: float) -> EnergyReading:
        span, self._span = self._span, None
        assert span is not None
        t0, t1 = self.window_edges
        self._close_span(span, t1)
        reading = EnergyReading(source=self.source, window_s=window_s)
        reading.devices = [self._device(span, k, t0, t1) for k in range(len(self._handles))]
        span.edge_problems([d.label for d in reading.devices])
        reading.flags = list(dict.fromkeys(flag for flag, _ in span.problems))
        reading.warnings = [warning for _, warning in span.problems]
        reading.samples, reading.states = list(span.samples), list(span.states)
        reading.tracks = list(span.tracks)
        reading.marks = list(span.marks)
        reading.poll_interval_s = self.poll_interval_s
        return reading

    def _idle_power_w(self, seconds: float) -> dict[str, float]:
        """Mean watts per GPU over ``seconds`` of idling, by the same rule as a window."""
        span = self._open_span()
        b0 = self.clock.now()
        self.clock.sleep(seconds)
        b1 = self.clock.now()
        self._close_span(span, b1)
        idle: dict[str, float] = {}
        for k, (index, name, _) in enumerate(self._info):
            energy_j, _ = span.energy(k, b0, b1, f"gpu{index}", name)
            if energy_j is not None and b1 > b0:
                idle[f"gpu{index}"] = energy_j / (b1 - b0)
        self._idle = idle
        return dict(idle)

    # ------------------------------------------------------------------ facts

    def temperatures(self) -> dict[str, float]:
        self._ensure_open()
        temps = facts.snapshot(self._handles, self.clock.now).temperature_c
        return {
            f"gpu{i}": float(t)
            for (i, _, _), t in zip(self._info, temps, strict=True)
            if t is not None
        }

    def device_facts(self) -> list[dict[str, Any]]:
        self._ensure_open()
        return [
            {**facts.device_facts(h, i), "power_avg_s": avg, "power_method": method}
            for (i, _, _), h, avg, method in zip(
                self._info,
                self._handles,
                self._power_avg,
                ["instant" if x else "power_usage" for x in self._instant],
                strict=True,
            )
        ]

    def other_processes(self) -> dict[str, list[int]]:
        self._ensure_open()
        ours = facts.own_pids()
        found = {
            f"gpu{i}": facts.other_processes(h, ours)
            for (i, _, _), h in zip(self._info, self._handles, strict=True)
        }
        return {label: pids for label, pids in found.items() if pids}

    def labels(self) -> list[str]:
        self._ensure_open()
        return [f"gpu{i}" for i, _, _ in self._info]

    def describe(self) -> str:
        names = sorted({name for _, name, _ in self._info})
        return f"nvml ({', '.join(names)}; driver {self.driver_version})" if names else "nvml"

    def close(self) -> None:
        if self._span is not None:
            self._span.stop()
            self._span = None
        self._t0 = None
        if self._open:
            self._open = False
            self.nvml.shutdown()
