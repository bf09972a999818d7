"""A stand-in for the ``pynvml`` module, so the NVML path runs without a GPU.

Each ``FakeGpu`` has a power trace (watts vs seconds since the fake was built, on its
clock); its energy counter is the trace's integral, exact for the ``Trace`` helpers
here. Tests compare a meter's numbers with ``Trace.integral(t0, t1)`` over its window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

NVML_TEMPERATURE_GPU = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_LIBRARY_NOT_FOUND = 12
_ERROR_TEXT: dict[int, str] = {}


class NVMLError(Exception):
    """Like ``pynvml.NVMLError``: carries ``.value``; ``NVMLError(code)`` builds the subclass."""

    code: ClassVar[int | None] = None
    _by_code: ClassVar[dict[int, type[NVMLError]]] = {}
    value: int

    def __new__(cls, value: int | None = None) -> NVMLError:
        if cls is NVMLError and value is not None:
            cls = NVMLError._by_code.get(value, NVMLError)
        code = value if value is not None else cls.code
        obj = Exception.__new__(cls)
        obj.value = code if code is not None else -1
        return obj

    def __init__(self, value: int | None = None) -> None:
        super().__init__(self.value)

    def __init_subclass__(cls) -> None:
        if cls.code is not None:
            NVMLError._by_code[cls.code] = cls

    def __str__(self) -> str:
        return _ERROR_TEXT.get(self.value, f"NVML error {self.value}")


def _error_class(name: str, code: int, text: str) -> type[NVMLError]:
    _ERROR_TEXT[code] = text
    return type(name, (NVMLError,), {"code": code, "__doc__": f"pynvml's {name}: {text}."})


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", 1, "Uninitialized")
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument", 2, "Invalid Argument")
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", 3, "Not Supported")
NVMLError_NotFound = _error_class("NVMLError_NotFound", 6, "Not Found")
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", 9, "Driver Not Loaded")
NVMLError_LibraryNotFound = _error_class(
    "NVMLError_LibraryNotFound", 12, "NVML Shared Library Not Found"
)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", 15, "GPU is lost")


@dataclass(frozen=True)
class Trace:
    """A power trace ``watts(t)`` with its exact cumulative ``energy(t)`` (joules from t=0)."""

    watts: Callable[[float], float]
    energy: Callable[[float], float]

    def __call__(self, t: float) -> float:
        return self.watts(t)

    def integral(self, t0: float, t1: float) -> float:
        """Joules from ``t0`` to ``t1`` seconds: what a perfect meter would report."""
        return self.energy(t1) - self.energy(t0)


def constant(w: float) -> Trace:
    """``w`` watts throughout."""
    return Trace(lambda t: w, lambda t: w * t)


def ramp(w0: float, w1: float, seconds: float) -> Trace:
    """Linear from ``w0`` at t=0 to ``w1`` at t=``seconds``, then ``w1``."""
    slope = (w1 - w0) / seconds

    def watts(t: float) -> float:
        return w0 + slope * t if t < seconds else w1

    def energy(t: float) -> float:
        if t < seconds:
            return w0 * t + slope * t * t / 2
        return (w0 + w1) / 2 * seconds + w1 * (t - seconds)

    return Trace(watts, energy)


def spikes(base_w: float, spike_w: float, period_s: float, width_s: float) -> Trace:
    """``base_w``, with a ``spike_w`` pulse of ``width_s`` at the start of every period."""

    def watts(t: float) -> float:
        return spike_w if t % period_s < width_s else base_w

    def energy(t: float) -> float:
        high = math.floor(t / period_s) * width_s + min(t % period_s, width_s)
        return base_w * t + (spike_w - base_w) * high

    return Trace(watts, energy)


def numeric(watts: Callable[[float], float], step_s: float = 1e-5) -> Trace:
    """Wrap any trace; its energy is a trapezoid integral from 0 with ``step_s`` steps."""

    def energy(t: float) -> float:
        n = max(1, math.ceil(t / step_s))
        h = t / n
        return h * (sum(watts(i * h) for i in range(1, n)) + (watts(0.0) + watts(t)) / 2)

    return Trace(watts, energy)


@dataclass
class FakeGpu:
    """One fake GPU. ``fail_after_s``: every call on it raises ``NVMLError_GpuIsLost`` from then.

    ``counter_reset_at_s`` makes the energy counter restart from 0 (a driver reload);
    ``counter_wrap_mj`` makes it wrap modulo that many mJ.
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
    temperature_c: int = 40
    memory_total_b: int = 80 * 2**30
    memory_used_b: int = 2**30
    power_limit_w: float = 700.0

    def __post_init__(self) -> None:
        p = self.power_w
        self.trace = p if isinstance(p, Trace) else numeric(p) if callable(p) else constant(p)

    def counter_mj(self, t: float) -> int:
        """The counter at ``t``: start value + integral since 0 (or since a reset)."""
        if self.counter_reset_at_s is not None and t >= self.counter_reset_at_s:
            value = math.floor(1000 * self.trace.integral(self.counter_reset_at_s, t))
        else:
            value = self.counter_start_mj + math.floor(1000 * self.trace.energy(t))
        return value % self.counter_wrap_mj if self.counter_wrap_mj else value


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
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_LIBRARY_NOT_FOUND = NVML_ERROR_LIBRARY_NOT_FOUND

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        driver_version: str = "550.54.15",
        init_error: int | None = None,
    ) -> None:
        self.gpus = list(gpus) if gpus is not None else [FakeGpu()]
        self.clock = clock
        self.epoch = clock()
        self.driver_version = driver_version
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
        if not gpu.power_supported or handle.mig is not None:
            raise NVMLError_NotSupported()
        return round(gpu.trace(t) * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu, t = self._gpu(handle)
        if not gpu.counter_supported or handle.mig is not None:
            raise NVMLError_NotSupported()
        return gpu.counter_mj(t)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        return self._gpu(handle)[0].temperature_c

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu(handle)[0]
        used = gpu.memory_used_b
        return SimpleNamespace(total=gpu.memory_total_b, used=used, free=gpu.memory_total_b - used)

    def nvmlDeviceGetPowerManagementLimit(self, handle: _Handle) -> int:
        return round(self._gpu(handle)[0].power_limit_w * 1000)
