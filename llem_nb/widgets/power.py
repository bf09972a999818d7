"""GPU power for the live progress view: total watts on the energy poller, and an SVG sparkline."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from llem_nb.energy.clock import SYSTEM_CLOCK, Clock
from llem_nb.energy.device import GpuDevice, Nvml, NvmlLike, as_nvml
from llem_nb.energy.factory import nvml_available
from llem_nb.energy.poller import Poller
from llem_nb.errors import MeterError, NvmlError


def sparkline_svg(values: Sequence[float], width: int = 240, height: int = 40) -> str:
    """An inline SVG polyline of ``values`` scaled to the box, with the last value as text."""
    if len(values) < 2:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width + 70}' height='{height}'>"
        f"<polyline fill='none' stroke='#d62728' stroke-width='1.5' points='{points}'/>"
        f"<text x='{width + 4}' y='{height / 2 + 4:.0f}' font-size='11'>{values[-1]:.0f} W</text>"
        "</svg>"
    )


class PowerSampler:
    """Total GPU power (W) over all NVML devices, read on the energy poller's schedule."""

    def __init__(
        self,
        nvml: Nvml,
        *,
        interval_s: float = 0.5,
        maxlen: int = 120,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.nvml = nvml
        self.interval_s = interval_s
        self.clock = clock
        self.samples: deque[float] = deque(maxlen=maxlen)
        self._on_sample: Callable[[], None] | None = None
        self._poller: Poller | None = None
        nvml.init()
        self._devices: list[GpuDevice] | None = nvml.devices()

    def sample(self) -> float:
        devices = self._devices or []
        watts = sum(d.power_mw() for d in devices) / 1000.0
        self.samples.append(watts)
        return watts

    def _round(self) -> None:
        try:
            self.sample()
        except NvmlError:
            return
        if self._on_sample is not None:
            self._on_sample()

    def start(self, on_sample: Callable[[], None] | None = None) -> None:
        self._on_sample = on_sample
        self._poller = Poller(
            self._round,
            _nothing,
            _nothing,
            poll_interval_s=self.interval_s,
            state_interval_s=self.interval_s,
            clock=self.clock,
        )
        self._poller.start()

    def stop(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.stop()
        if self._devices is not None:
            self._devices = None
            self.nvml.shutdown()


def _nothing() -> None:
    """The sampler keeps no state snapshots and serves no phase marks."""


def power_sampler(nvml: NvmlLike = None) -> PowerSampler | None:
    """A sampler over every GPU when NVML works here, else None (no power shown)."""
    ok, _ = nvml_available(nvml)
    if not ok:
        return None
    try:
        return PowerSampler(as_nvml(nvml))
    except MeterError:
        return None
