"""GPU power for the live progress view: a sampling thread over NVML and an SVG sparkline."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any


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
    """Total GPU power (W) over all NVML devices, sampled by a daemon thread."""

    def __init__(self, nvml: Any, *, interval_s: float = 0.5, maxlen: int = 120) -> None:
        self.nvml = nvml
        self.interval_s = interval_s
        self.samples: deque[float] = deque(maxlen=maxlen)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def sample(self) -> float:
        watts = sum(self.nvml.nvmlDeviceGetPowerUsage(h) for h in self._handles) / 1000.0
        self.samples.append(watts)
        return watts

    def start(self, on_sample: Any = None) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.sample()
                except self.nvml.NVMLError:
                    continue
                if on_sample is not None:
                    on_sample()

        self._thread = threading.Thread(target=loop, name="llem-power-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.interval_s + 1)
        if self._handles is not None:
            self.nvml.nvmlShutdown()
            self._handles = None  # type: ignore[assignment]


def power_sampler(nvml: Any) -> PowerSampler | None:
    from llem_nb.energy.factory import nvml_available
    from llem_nb.energy.nvml_devices import load_pynvml
    from llem_nb.errors import MeterError

    ok, _ = nvml_available(nvml)
    if not ok:
        return None
    try:
        return PowerSampler(nvml if nvml is not None else load_pynvml())
    except MeterError:
        return None
