"""NvmlMeter: GPU energy from NVML's total-energy counter, with power polling alongside.

Per GPU, the primary number is the difference of ``nvmlDeviceGetTotalEnergyConsumption``
(mJ, Volta and newer) across the window. A daemon thread samples power every
``poll_interval_s`` (instantaneous power where the driver offers it, else
``nvmlDeviceGetPowerUsage``, a 1 s average on Ampere and newer); the trapezoid over
those samples (with one at ``start()`` and one at ``stop()``) is the cross-check, and the
energy where the counter is missing or went backwards. Every ``state_interval_s`` the
same thread also snapshots temperature, SM clock, memory used and throttle reasons.
``mark()`` asks the thread to read the counters at a phase boundary (a counter read
costs ~4 ms on an H200, so never per step, and never on the caller's thread).
NVML errors become ``MeterError`` or per-device warnings here, in one place.
"""

from __future__ import annotations

import time
from typing import Any

from llem_nb.energy import nvml_facts as facts
from llem_nb.energy.base import (
    DeviceReading,
    EnergyMeter,
    EnergyReading,
    PowerSample,
    StateSample,
)
from llem_nb.energy.integrate import trapezoid
from llem_nb.energy.nvml_devices import (
    as_text,
    load_pynvml,
    nvml_init_reason,
    visible_nvml_indices,
)
from llem_nb.energy.poller import Poller
from llem_nb.errors import MeterError

__all__ = [
    "NvmlMeter",
    "PowerSample",
    "as_text",
    "load_pynvml",
    "nvml_init_reason",
    "visible_nvml_indices",
]


class NvmlMeter(EnergyMeter):
    """Energy of the given NVML GPU indices (None = all); labels ``gpu{index}``."""

    source = "nvml"

    def __init__(
        self,
        gpu_indices: list[int] | None,
        *,
        poll_interval_s: float = 0.05,
        state_interval_s: float = 0.1,
        nvml: Any = None,
    ) -> None:
        super().__init__()
        self.gpu_indices = list(gpu_indices) if gpu_indices is not None else None
        self.poll_interval_s = poll_interval_s
        self.state_interval_s = max(state_interval_s, poll_interval_s)
        self.samples: list[PowerSample] = []
        self.states: list[StateSample] = []
        self.driver_version = ""
        self.nvml = nvml
        self._open = False
        self._handles: list[Any] = []
        self._info: list[tuple[int, str, str]] = []
        self._mig: list[bool] = []
        self._instant: list[bool] = []
        self._idle: dict[str, float] = {}
        self._counter0: list[float | None] = []
        self._errors: dict[int, str] = {}
        self._polling: Poller | None = None

    # ------------------------------------------------------------------ opening

    def _ensure_open(self) -> None:
        if self._open:
            return
        nv = self.nvml = self.nvml if self.nvml is not None else load_pynvml()
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            fix = "install the NVIDIA driver, or set energy.source='auto'"
            raise MeterError(nvml_init_reason(nv, exc), fix=fix) from exc
        self._open = True
        try:
            count = nv.nvmlDeviceGetCount()
            indices = self.gpu_indices if self.gpu_indices is not None else list(range(count))
            if any(not 0 <= i < count for i in indices):
                raise MeterError(
                    f"NVML GPU indices {indices} do not all exist ({count} GPU(s) here)",
                    fix="pass NVML indices, e.g. from visible_nvml_indices() or `nvidia-smi -L`",
                )
            self.driver_version = as_text(nv.nvmlSystemGetDriverVersion())
            self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in indices]
            self._info = [
                (i, as_text(nv.nvmlDeviceGetName(h)), as_text(nv.nvmlDeviceGetUUID(h)))
                for i, h in zip(indices, self._handles, strict=True)
            ]
            self._mig = [self._mig_enabled(h) for h in self._handles]
            self._instant = [self._instant_mw(h) is not None for h in self._handles]
        except (MeterError, nv.NVMLError) as exc:
            self.close()
            if isinstance(exc, MeterError):
                raise
            raise MeterError(f"NVML could not open the GPUs: {exc}") from exc

    def _mig_enabled(self, handle: Any) -> bool:
        try:
            return bool(self.nvml.nvmlDeviceGetMigMode(handle)[0])
        except (AttributeError, self.nvml.NVMLError):
            return False

    def _instant_mw(self, handle: Any) -> float | None:
        """Instantaneous power (mW) from the field API; None where the driver lacks it."""
        try:
            (value,) = self.nvml.nvmlDeviceGetFieldValues(handle, [facts.NVML_FI_DEV_POWER_INSTANT])
        except (AttributeError, self.nvml.NVMLError):
            return None
        if value.nvmlReturn != 0 or not value.value.uiVal:
            return None
        return float(value.value.uiVal)

    # ------------------------------------------------------------------ reading

    def _read(self, call: str) -> list[float | None]:
        """NVML ``call`` per GPU; None where it fails, keeping each GPU's first real error."""
        values: list[float | None] = []
        for k, h in enumerate(self._handles):
            try:
                if call == "power" and self._instant[k]:
                    value = self._instant_mw(h)
                    if value is None:
                        raise self.nvml.NVMLError_NotSupported()
                    values.append(value)
                    continue
                fn = "nvmlDeviceGetPowerUsage" if call == "power" else call
                values.append(float(getattr(self.nvml, fn)(h)))
            except self.nvml.NVMLError as exc:
                if not isinstance(exc, self.nvml.NVMLError_NotSupported):
                    self._errors.setdefault(k, str(exc))
                values.append(None)
        return values

    def _counters(self) -> list[float | None]:
        return self._read("nvmlDeviceGetTotalEnergyConsumption")

    def _sample(self) -> PowerSample:
        t = time.perf_counter()
        mw = self._read("power")
        return PowerSample(t, tuple(None if w is None else w / 1000.0 for w in mw))

    def _state(self) -> StateSample:
        return facts.snapshot(self.nvml, self._handles)

    def _poller(self) -> Poller:
        return Poller(
            self._sample,
            self._state,
            self._counters,
            poll_interval_s=self.poll_interval_s,
            state_interval_s=self.state_interval_s,
        )

    def _begin(self) -> tuple[list[float | None], Poller]:
        """A state and a sample, then the counters (slow) nearest the window edge, then polling."""
        self._errors = {}
        poller = self._poller()
        poller.first()
        counters = self._counters()
        poller.start()
        self._polling = poller
        return counters, poller

    def _end(self, poller: Poller) -> list[float | None]:
        poller.stop()
        self._polling = None
        counters = self._counters()
        poller.last()
        return counters

    def mark(self, label: str, t: float) -> None:
        """Queue a counter read for a boundary at ``t``; the polling thread does the read."""
        poller = self._polling
        if poller is not None and self._t0 is not None:
            poller.mark(label, t)

    # ------------------------------------------------------------------ window

    def _device(
        self, k: int, c0: float | None, c1: float | None, samples: list[PowerSample]
    ) -> tuple[DeviceReading, tuple[str, str] | None]:
        """GPU ``k``'s reading, and (flag, warning) when something is off."""
        index, name, uuid = self._info[k]
        label = f"gpu{index}"
        power_j, n = trapezoid(samples, k)
        energy_j, method, problem = power_j, "power", None
        if k in self._errors:
            energy_j = power_j = None
            problem = ("gpu_read_error", f"{label} ({name}) could not be read: {self._errors[k]}")
        elif c0 is not None and c1 is not None and c1 >= c0:
            energy_j, method = (c1 - c0) / 1000.0, "counter"
        elif c0 is not None and c1 is not None:
            problem = (
                "counter_reset",
                f"{label} energy counter went backwards; used power polling",
            )
        elif power_j is None:
            problem = ("gpu_read_error", f"{label} ({name}) reports neither energy nor power")
        reading = DeviceReading(label, energy_j, method, index, uuid, name, n, power_j)
        reading.idle_power_w = self._idle.get(label)
        reading.mig = self._mig[k]
        reading.power_method = "instant" if self._instant[k] else "power_usage"
        return reading, problem

    def _start(self) -> None:
        self._ensure_open()
        self._counter0, poller = self._begin()
        self.samples, self.states = poller.samples, poller.states

    def _stop(self, window_s: float) -> EnergyReading:
        poller = self._polling
        assert poller is not None
        counter1 = self._end(poller)
        reading = EnergyReading(source=self.source, window_s=window_s)
        for k, c1 in enumerate(counter1):
            device, problem = self._device(k, self._counter0[k], c1, self.samples)
            reading.devices.append(device)
            if self._mig[k]:
                problem = (
                    "mig_whole_gpu",
                    f"{device.label} is in MIG mode: NVML energy covers "
                    "the whole GPU, including other MIG instances",
                )
            if problem is not None:
                reading.flags.append(problem[0])
                reading.warnings.append(problem[1])
        reading.flags = list(dict.fromkeys(reading.flags))
        reading.samples, reading.states = list(poller.samples), list(poller.states)
        reading.marks = list(poller.marks)
        return reading

    def _idle_power_w(self, seconds: float) -> dict[str, float]:
        """Mean watts per GPU over ``seconds`` (counter, else polling); later readings carry it."""
        self._ensure_open()
        c0, poller = self._begin()
        time.sleep(seconds)
        c1 = self._end(poller)
        samples = poller.samples
        elapsed = samples[-1].t - samples[0].t
        devices = [self._device(k, c0[k], c1[k], samples)[0] for k in range(len(c1))]
        self._idle = {
            d.label: d.energy_j / elapsed for d in devices if d.energy_j is not None and elapsed > 0
        }
        return dict(self._idle)

    # ------------------------------------------------------------------ facts

    def temperatures(self) -> dict[str, float]:
        self._ensure_open()
        temps = self._state().temperature_c
        return {
            f"gpu{i}": float(t)
            for (i, _, _), t in zip(self._info, temps, strict=True)
            if t is not None
        }

    def device_facts(self) -> list[dict[str, Any]]:
        self._ensure_open()
        return [
            facts.device_facts(self.nvml, h, i)
            for (i, _, _), h in zip(self._info, self._handles, strict=True)
        ]

    def other_processes(self) -> dict[str, list[int]]:
        self._ensure_open()
        ours = facts.own_pids()
        found = {
            f"gpu{i}": facts.other_processes(self.nvml, h, ours)
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
        if self._polling is not None:
            self._polling.stop()
            self._polling = None
        self._t0 = None
        if self._open:
            self._open = False
            self.nvml.nvmlShutdown()
