"""An NVML simulator: a stand-in for the ``pynvml`` module driven by a model of each GPU.

Each ``FakeGpu`` has a power trace (watts vs seconds on the simulator's timeline, 0 = when
the ``FakeNvml`` was built) and behaves the way NVML does on real hardware:

- the total-energy counter (mJ since "driver load") advances in steps every
  ``counter_update_s`` (0 = live), at ticks ``counter_phase_s + k × counter_update_s``;
- ``nvmlDeviceGetPowerUsage`` is a moving average over ``power_avg_s`` (NVIDIA documents
  a 1 s average on Ampere and later except GA100 (A100), instantaneous before; that is
  the default for the ``architecture`` and ``name`` given), refreshed every
  ``power_update_s`` (0 = every read); the ``NVML_FI_DEV_POWER_INSTANT`` field, where
  ``instant_power``, is the trace itself;
- every call on a device takes ``read_latency_s``: its value is sampled in the middle of
  the call and the clock moves on by the latency (``SimClock.advance``; a real sleep on
  the real clock), so GPUs read one after another are read at different times;
- power limit, SM and memory clocks, temperature and throttle reasons (constants or
  functions of time), uncorrected ECC errors, XID events, compute processes, MIG.

Tests compare a meter's numbers with ``Trace.integral(t0, t1)`` over its window: an
integral computed from the trace, never a value the code under test produced.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from llem_nb.testing.nvml_device import (
    NVML_CLOCK_MEM,
    NVML_CLOCK_SM,
    NVML_FI_DEV_POWER_INSTANT,
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
    NVML_TEMPERATURE_GPU,
    NVML_VOLATILE_ECC,
    FakeGpu,
    documented_power_avg_s,
    inside,
    nvmlEventTypeXidCriticalError,
    value_at,
)
from llem_nb.testing.nvml_errors import (
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NVMLError,
    NVMLError_DriverNotLoaded,
    NVMLError_GpuIsLost,
    NVMLError_InvalidArgument,
    NVMLError_LibraryNotFound,
    NVMLError_NotFound,
    NVMLError_NotSupported,
    NVMLError_Timeout,
    NVMLError_Uninitialized,
    NVMLError_Unknown,
)
from llem_nb.testing.traces import Trace


@dataclass(frozen=True)
class _Handle:
    index: int
    mig: int | None = None


@dataclass
class _EventSet:
    registered: dict[int, int] = field(default_factory=dict)
    seen: set[tuple[int, float]] = field(default_factory=set)


class FakeNvml:
    """Quacks like the ``pynvml`` module for the calls llem_nb makes.

    ``clock``: a ``SimClock`` (virtual time) or any callable returning seconds (real time:
    read latency then really sleeps). ``init_error``: an NVML error code ``nvmlInit``
    raises (e.g. 12, library not found). ``calls`` counts calls by name, so tests can
    check init/shutdown pairing and how often the counter was read.
    """

    NVMLError = NVMLError
    NVMLError_Uninitialized = NVMLError_Uninitialized
    NVMLError_InvalidArgument = NVMLError_InvalidArgument
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NotFound = NVMLError_NotFound
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVMLError_Timeout = NVMLError_Timeout
    NVMLError_Unknown = NVMLError_Unknown
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM = NVML_CLOCK_SM
    NVML_CLOCK_MEM = NVML_CLOCK_MEM
    NVML_FI_DEV_POWER_INSTANT = NVML_FI_DEV_POWER_INSTANT
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_LIBRARY_NOT_FOUND = NVML_ERROR_LIBRARY_NOT_FOUND
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    NVML_VOLATILE_ECC = NVML_VOLATILE_ECC
    nvmlEventTypeXidCriticalError = nvmlEventTypeXidCriticalError

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
        self._spend: Callable[[float], None] = getattr(clock, "advance", time.sleep)
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.init_error = init_error
        self.calls: dict[str, int] = {}
        self._refcount = 0

    def now(self) -> float:
        """Seconds on the simulator's timeline (since construction)."""
        return self.clock() - self.epoch

    def elapsed(self, timestamp: float) -> float:
        """A ``clock()`` timestamp as seconds on the simulator's timeline."""
        return timestamp - self.epoch

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _require_init(self) -> None:
        if self._refcount <= 0:
            raise NVMLError_Uninitialized()

    def _gpu(self, handle: _Handle) -> tuple[FakeGpu, float]:
        """The GPU and the instant its value is sampled (mid-call); the call's time passes."""
        self._require_init()
        gpu = self.gpus[handle.index]
        latency = gpu.read_latency_s
        t = self.now() + latency / 2
        if latency > 0:
            self._spend(latency)
        if gpu.fail_after_s is not None and t >= gpu.fail_after_s:
            raise NVMLError_GpuIsLost()
        return gpu, t

    # ------------------------------------------------------------------ system

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

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._require_init()
        return self.cuda_driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._require_init()
        return len(self.gpus)

    # ------------------------------------------------------------------ identity

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

    def nvmlDeviceGetArchitecture(self, handle: _Handle) -> int:
        return self._gpu(handle)[0].architecture

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        mode = int(self._gpu(handle)[0].mig)
        return [mode, mode]

    # ------------------------------------------------------------------ energy and power

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        self._count("nvmlDeviceGetPowerUsage")
        gpu, t = self._gpu(handle)
        if inside(gpu.power_gaps, t):
            raise gpu.gap_error()
        mw = gpu.power_mw(t, instant=False)
        if mw is None or handle.mig is not None:
            raise NVMLError_NotSupported()
        return mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        self._count("nvmlDeviceGetTotalEnergyConsumption")
        gpu, t = self._gpu(handle)
        if not gpu.counter_supported or handle.mig is not None:
            raise NVMLError_NotSupported()
        if inside(gpu.counter_gaps, t):
            raise gpu.gap_error()
        return gpu.counter_mj(t)

    def nvmlDeviceGetFieldValues(self, handle: _Handle, field_ids: list[int]) -> list[Any]:
        """Only the instantaneous-power field is modelled; others report not supported."""
        self._count("nvmlDeviceGetFieldValues")
        gpu, t = self._gpu(handle)
        out = []
        for fid in field_ids:
            ok = fid == NVML_FI_DEV_POWER_INSTANT and gpu.instant_power and handle.mig is None
            if ok and inside(gpu.power_gaps, t):
                raise gpu.gap_error()
            mw = gpu.power_mw(t, instant=True) if ok else None
            ok = mw is not None
            out.append(
                SimpleNamespace(
                    fieldId=fid,
                    nvmlReturn=0 if ok else NVML_ERROR_NOT_SUPPORTED,
                    value=SimpleNamespace(uiVal=mw or 0),
                )
            )
        return out

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        gpu, t = self._gpu(handle)
        return round(value_at(gpu.power_limit_w, t) * 1000)

    def nvmlDeviceGetPowerManagementLimit(self, handle: _Handle) -> int:
        gpu, t = self._gpu(handle)
        return round(value_at(gpu.power_limit_w, t) * 1000)

    # ------------------------------------------------------------------ state

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu, t = self._gpu(handle)
        return round(value_at(gpu.temperature_c, t))

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu, t = self._gpu(handle)
        value = gpu.sm_clock_mhz if clock_type == NVML_CLOCK_SM else gpu.mem_clock_mhz
        return round(value_at(value, t))

    def nvmlDeviceGetMaxClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu, _ = self._gpu(handle)
        return round(gpu.max_sm_clock_mhz) if clock_type == NVML_CLOCK_SM else 2619

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _Handle) -> int:
        gpu, t = self._gpu(handle)
        return int(value_at(gpu.throttle_reasons, t))

    def nvmlDeviceGetPersistenceMode(self, handle: _Handle) -> int:
        return int(self._gpu(handle)[0].persistence_mode)

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu(handle)[0]
        used = gpu.memory_used_b
        return SimpleNamespace(total=gpu.memory_total_b, used=used, free=gpu.memory_total_b - used)

    def nvmlDeviceGetTotalEccErrors(self, handle: _Handle, error_type: int, counter: int) -> int:
        gpu, t = self._gpu(handle)
        if gpu.ecc_uncorrected is None:
            raise NVMLError_NotSupported()
        return int(value_at(gpu.ecc_uncorrected, t)) if error_type == 1 else 0

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        gpu, _ = self._gpu(handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in gpu.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        self._gpu(handle)
        return []

    # ------------------------------------------------------------------ events (XID)

    def nvmlDeviceGetSupportedEventTypes(self, handle: _Handle) -> int:
        self._gpu(handle)
        return nvmlEventTypeXidCriticalError

    def nvmlEventSetCreate(self) -> _EventSet:
        self._require_init()
        return _EventSet()

    def nvmlDeviceRegisterEvents(self, handle: _Handle, types: int, event_set: _EventSet) -> None:
        self._gpu(handle)
        event_set.registered[handle.index] = types

    def nvmlEventSetWait_v2(self, event_set: _EventSet, timeout_ms: int) -> SimpleNamespace:
        """The oldest XID event not yet returned that happened by now; else a timeout."""
        self._require_init()
        now = self.now()
        for index, types in sorted(event_set.registered.items()):
            if not types & nvmlEventTypeXidCriticalError:
                continue
            for when, xid in sorted(self.gpus[index].events):
                if when <= now and (index, when) not in event_set.seen:
                    event_set.seen.add((index, when))
                    return SimpleNamespace(
                        device=_Handle(index),
                        eventType=nvmlEventTypeXidCriticalError,
                        eventData=xid,
                        gpuInstanceId=0xFFFFFFFF,
                        computeInstanceId=0xFFFFFFFF,
                    )
        raise NVMLError_Timeout()

    def nvmlEventSetFree(self, event_set: _EventSet) -> None:
        event_set.registered.clear()


def decaying_after_load(
    *, idle_w: float, hot_w: float, load_s: float, end_s: float, tau_s: float
) -> Trace:
    """A GPU that leaves idle at ``load_s``, draws ``hot_w`` until ``end_s`` (load and
    warm-up), then falls back towards ``idle_w`` with time constant ``tau_s``, as a real GPU
    stays in its high-power state and warm after work stops. Exact energy."""
    excess = hot_w - idle_w

    def watts(t: float) -> float:
        if t < load_s:
            return idle_w
        if t < end_s:
            return hot_w
        return idle_w + excess * math.exp(-(t - end_s) / tau_s)

    def energy(t: float) -> float:
        joules = idle_w * t
        if t > load_s:
            joules += excess * (min(t, end_s) - load_s)
        if t > end_s:
            joules += excess * tau_s * (1 - math.exp(-(t - end_s) / tau_s))
        return joules

    return Trace(watts, energy)


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
    "NVMLError_Timeout",
    "NVMLError_Uninitialized",
    "NVMLError_Unknown",
    "decaying_after_load",
    "documented_power_avg_s",
]
