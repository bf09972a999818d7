"""A stand-in for the ``pynvml`` module, so the NVML path runs without a GPU.

Each ``FakeGpu`` has a power trace (watts vs seconds since the fake was built, on its
clock); its energy counter is the trace's integral, exact for the ``Trace`` helpers
(``llem_nb.energy.traces``). Tests compare a meter's numbers with
``Trace.integral(t0, t1)`` over its window. Temperature, SM clock and throttle reasons
are constants or functions of the same time; ``processes`` lists (pid, bytes) users.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from llem_nb.energy.fake_errors import (
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NVMLError,
    NVMLError_DriverNotLoaded,
    NVMLError_GpuIsLost,
    NVMLError_InvalidArgument,
    NVMLError_LibraryNotFound,
    NVMLError_NotFound,
    NVMLError_NotSupported,
    NVMLError_Uninitialized,
)
from llem_nb.energy.traces import Trace, constant, numeric, ramp, spikes, steps

__all__ = [
    "FakeGpu",
    "FakeNvml",
    "NVMLError",
    "NVMLError_DriverNotLoaded",
    "NVMLError_GpuIsLost",
    "NVMLError_InvalidArgument",
    "NVMLError_LibraryNotFound",
    "NVMLError_NotFound",
    "NVMLError_NotSupported",
    "NVMLError_Uninitialized",
    "Trace",
    "constant",
    "numeric",
    "ramp",
    "spikes",
    "steps",
]

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_FI_DEV_POWER_INSTANT = 186


@dataclass
class FakeGpu:
    """One fake GPU. ``fail_after_s``: every call on it raises ``NVMLError_GpuIsLost`` from then.

    ``counter_reset_at_s`` makes the energy counter restart from 0 (a driver reload);
    ``counter_wrap_mj`` makes it wrap modulo that many mJ. ``instant_power=False`` models
    a driver without the instantaneous-power field (only ``nvmlDeviceGetPowerUsage``).
    Power reads are scaled by ``power_scale`` (the counter is not: a disagreeing pair)
    and report "not supported" inside ``power_gaps`` ((start, end) seconds).
    """

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    power_w: Trace | Callable[[float], float] | float = 100.0
    counter_supported: bool = True
    power_supported: bool = True
    mig: bool = False
    mig_uuids: tuple[str, ...] = ()
    fail_after_s: float | None = None
    counter_start_mj: int = 0
    counter_reset_at_s: float | None = None
    counter_wrap_mj: int | None = None
    temperature_c: float | Callable[[float], float] = 40
    memory_total_b: int = 80 * 2**30
    memory_used_b: int = 2**30
    power_limit_w: float = 700.0
    instant_power: bool = True
    sm_clock_mhz: float | Callable[[float], float] = 1980
    max_sm_clock_mhz: float = 1980
    throttle_reasons: int | Callable[[float], int] = 0
    persistence_mode: bool = True
    processes: list[tuple[int, int]] = field(default_factory=list)
    power_scale: float = 1.0
    power_gaps: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        p = self.power_w
        self.trace = p if isinstance(p, Trace) else numeric(p) if callable(p) else constant(p)

    def power_mw(self, t: float) -> int | None:
        """The power reading (mW) at ``t``; None where the read reports not supported."""
        if not self.power_supported or any(a <= t < b for a, b in self.power_gaps):
            return None
        return round(self.trace(t) * self.power_scale * 1000)

    def counter_mj(self, t: float) -> int:
        """The counter at ``t``: start value + integral since 0 (or since a reset)."""
        if self.counter_reset_at_s is not None and t >= self.counter_reset_at_s:
            value = math.floor(1000 * self.trace.integral(self.counter_reset_at_s, t))
        else:
            value = self.counter_start_mj + math.floor(1000 * self.trace.energy(t))
        return value % self.counter_wrap_mj if self.counter_wrap_mj else value


def _at(value: Any, t: float) -> Any:
    return value(t) if callable(value) else value


@dataclass(frozen=True)
class _Handle:
    index: int
    mig: int | None = None


class FakeNvml:
    """Quacks like the ``pynvml`` module for the calls llem_nb makes.

    ``init_error``: an NVML error code ``nvmlInit`` raises (e.g. 12, library not found).
    ``calls`` counts calls by name so tests can check init/shutdown pairing.
    """

    NVMLError = NVMLError
    NVMLError_Uninitialized = NVMLError_Uninitialized
    NVMLError_InvalidArgument = NVMLError_InvalidArgument
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NotFound = NVMLError_NotFound
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM = NVML_CLOCK_SM
    NVML_FI_DEV_POWER_INSTANT = NVML_FI_DEV_POWER_INSTANT
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_LIBRARY_NOT_FOUND = NVML_ERROR_LIBRARY_NOT_FOUND

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
        init_error: int | None = None,
    ) -> None:
        self.gpus = list(gpus) if gpus is not None else [FakeGpu()]
        self.clock = clock
        self.epoch = clock()
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.init_error = init_error
        self.calls: dict[str, int] = {}
        self._refcount = 0

    def now(self) -> float:
        """Seconds on the fake's timeline (since construction)."""
        return self.clock() - self.epoch

    def elapsed(self, timestamp: float) -> float:
        """A ``clock()`` timestamp as seconds on the fake's timeline."""
        return timestamp - self.epoch

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _require_init(self) -> None:
        if self._refcount <= 0:
            raise NVMLError_Uninitialized()

    def _gpu(self, handle: _Handle) -> tuple[FakeGpu, float]:
        self._require_init()
        gpu = self.gpus[handle.index]
        t = self.now()
        if gpu.fail_after_s is not None and t >= gpu.fail_after_s:
            raise NVMLError_GpuIsLost()
        return gpu, t

    def nvmlInit(self) -> None:
        self._count("nvmlInit")
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self._refcount += 1

    def nvmlShutdown(self) -> None:
        self._count("nvmlShutdown")
        self._require_init()
        self._refcount -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._require_init()
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._require_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._require_init()
        if not 0 <= index < len(self.gpus):
            raise NVMLError_InvalidArgument()
        return _Handle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        self._require_init()
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid == text:
                return _Handle(i)
            if text in gpu.mig_uuids:
                return _Handle(i, gpu.mig_uuids.index(text))
        raise NVMLError_NotFound()

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: _Handle) -> _Handle:
        self._gpu(handle)
        if handle.mig is None:
            raise NVMLError_InvalidArgument()
        return _Handle(handle.index)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu, _ = self._gpu(handle)
        return gpu.mig_uuids[handle.mig] if handle.mig is not None else gpu.uuid

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        return self._gpu(handle)[0].name

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        mode = int(self._gpu(handle)[0].mig)
        return [mode, mode]

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu, t = self._gpu(handle)
        mw = gpu.power_mw(t)
        if mw is None or handle.mig is not None:
            raise NVMLError_NotSupported()
        return mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu, t = self._gpu(handle)
        if not gpu.counter_supported or handle.mig is not None:
            raise NVMLError_NotSupported()
        return gpu.counter_mj(t)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._require_init()
        return self.cuda_driver_version

    def nvmlDeviceGetFieldValues(self, handle: _Handle, field_ids: list[int]) -> list[Any]:
        """Only the instantaneous-power field is modelled; others report not supported."""
        gpu, t = self._gpu(handle)
        out = []
        for fid in field_ids:
            ok = fid == NVML_FI_DEV_POWER_INSTANT and gpu.instant_power and handle.mig is None
            mw = gpu.power_mw(t) if ok else None
            ok = mw is not None
            out.append(
                SimpleNamespace(
                    fieldId=fid,
                    nvmlReturn=0 if ok else NVML_ERROR_NOT_SUPPORTED,
                    value=SimpleNamespace(uiVal=mw or 0),
                )
            )
        return out

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu, t = self._gpu(handle)
        return round(_at(gpu.temperature_c, t))

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu, t = self._gpu(handle)
        return round(_at(gpu.sm_clock_mhz, t)) if clock_type == NVML_CLOCK_SM else 2619

    def nvmlDeviceGetMaxClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu, _ = self._gpu(handle)
        return round(gpu.max_sm_clock_mhz) if clock_type == NVML_CLOCK_SM else 2619

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _Handle) -> int:
        gpu, t = self._gpu(handle)
        return int(_at(gpu.throttle_reasons, t))

    def nvmlDeviceGetPersistenceMode(self, handle: _Handle) -> int:
        return int(self._gpu(handle)[0].persistence_mode)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        gpu, _ = self._gpu(handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in gpu.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        self._gpu(handle)
        return []

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        return round(self._gpu(handle)[0].power_limit_w * 1000)

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu(handle)[0]
        used = gpu.memory_used_b
        return SimpleNamespace(total=gpu.memory_total_b, used=used, free=gpu.memory_total_b - used)

    def nvmlDeviceGetPowerManagementLimit(self, handle: _Handle) -> int:
        return round(self._gpu(handle)[0].power_limit_w * 1000)
