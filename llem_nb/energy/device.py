"""The one door to NVML: ``Nvml`` wraps a pynvml-like module, ``GpuDevice`` reads one GPU.

Everything in llem_nb that talks to an NVIDIA GPU goes through here. The module behind
the door is the real ``pynvml`` (package ``nvidia-ml-py``, imported on first use) or a
stand-in with the same calls — the simulator ``llem_nb.testing.FakeNvml`` plugs in here
and nowhere else: ``Nvml(FakeNvml(...))``. Every error the module raises leaves the door
as an ``NvmlError`` (``NvmlNotSupported`` when this GPU, driver or pynvml lacks the call,
``NvmlUnavailable`` when there is no NVML at all), through the one translator
``Nvml.translate``; callers never see the module's own exception classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from llem_nb.errors import NvmlError, NvmlNotSupported, NvmlUnavailable

NVML_FI_DEV_POWER_INSTANT = 186
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
INSTALL_FIX = "pip install nvidia-ml-py, or set energy.source='auto'"
DRIVER_FIX = "install the NVIDIA driver, or set energy.source='auto'"


def as_text(value: str | bytes) -> str:
    """NVML strings are bytes in old pynvml, str in new."""
    return value.decode() if isinstance(value, bytes) else str(value)


def load_pynvml() -> Any:
    """Import the real ``pynvml`` module (package ``nvidia-ml-py``) on first use."""
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable("nvidia-ml-py (pynvml) is not installed", fix=INSTALL_FIX) from exc
    return pynvml


class Nvml:
    """NVML behind one door: ``module`` is pynvml or a stand-in with its calls."""

    def __init__(self, module: Any) -> None:
        self.module = module

    @classmethod
    def load(cls) -> Nvml:
        """The real NVML (``NvmlUnavailable`` when pynvml is not installed)."""
        return cls(load_pynvml())

    # ------------------------------------------------------------------ errors

    def _errors(self) -> tuple[type[BaseException], ...]:
        base = getattr(self.module, "NVMLError", None)
        mismatch = getattr(self.module, "NVMLLibraryMismatchError", None)
        return tuple(e for e in (base, mismatch) if isinstance(e, type))

    def translate(self, exc: BaseException, call: str = "") -> NvmlError:
        """The module's error (or a call it lacks) as an ``NvmlError`` subclass."""
        code = getattr(exc, "value", None)
        code = code if isinstance(code, int) else None
        where = f"{call}: " if call else ""
        if isinstance(exc, AttributeError) or code in (
            NVML_ERROR_NOT_SUPPORTED,
            NVML_ERROR_FUNCTION_NOT_FOUND,
        ):
            return NvmlNotSupported(f"{where}not supported here ({exc})", code=code)
        not_found = getattr(self.module, "NVMLError_LibraryNotFound", None)
        if code == NVML_ERROR_LIBRARY_NOT_FOUND or (
            isinstance(not_found, type) and isinstance(exc, not_found)
        ):
            return NvmlUnavailable(
                "NVML library not found (no NVIDIA driver)", code=code, fix=DRIVER_FIX
            )
        if code == NVML_ERROR_DRIVER_NOT_LOADED:
            return NvmlUnavailable("NVIDIA driver not loaded", code=code, fix=DRIVER_FIX)
        return NvmlError(f"{where}{exc}", code=code)

    def call(self, name: str, *args: Any) -> Any:
        """``module.name(*args)``; any NVML failure as an ``NvmlError``."""
        fn = getattr(self.module, name, None)
        if fn is None:
            raise NvmlNotSupported(f"{name}: this pynvml has no such call")
        try:
            return fn(*args)
        except self._errors() as exc:
            raise self.translate(exc, name) from exc

    def try_call(self, name: str, *args: Any) -> Any:
        """``call``, or None when it fails: for facts that are not the energy itself."""
        try:
            return self.call(name, *args)
        except NvmlError:
            return None

    # ------------------------------------------------------------------ system

    def init(self) -> None:
        """``nvmlInit`` (reference counted by NVML); ``NvmlUnavailable`` when it fails."""
        try:
            self.call("nvmlInit")
        except NvmlUnavailable:
            raise
        except NvmlError as exc:
            raise NvmlUnavailable(
                f"NVML failed to initialise: {exc.message}", code=exc.code, fix=DRIVER_FIX
            ) from exc

    def shutdown(self) -> None:
        self.call("nvmlShutdown")

    @contextmanager
    def session(self) -> Iterator[Nvml]:
        """``init`` … ``shutdown`` around a block."""
        self.init()
        try:
            yield self
        finally:
            self.shutdown()

    def device_count(self) -> int:
        return int(self.call("nvmlDeviceGetCount"))

    def driver_version(self) -> str:
        return as_text(self.call("nvmlSystemGetDriverVersion"))

    def cuda_driver_version(self) -> int | None:
        """The CUDA version the driver supports, as NVML gives it (12040 = 12.4)."""
        value = self.try_call("nvmlSystemGetCudaDriverVersion")
        return None if value is None else int(value)

    def device(self, index: int) -> GpuDevice:
        return GpuDevice(self, self.call("nvmlDeviceGetHandleByIndex", index), index)

    def devices(self) -> list[GpuDevice]:
        return [self.device(i) for i in range(self.device_count())]

    def device_by_uuid(self, uuid: str) -> GpuDevice:
        """A GPU or MIG instance by UUID (index -1: not known from the UUID alone)."""
        return GpuDevice(self, self.call("nvmlDeviceGetHandleByUUID", uuid), -1)

    def available(self) -> tuple[bool, str]:
        """Whether NVML initialises and sees a GPU here, and why not (or what it found)."""
        try:
            self.init()
        except NvmlError as exc:
            return False, exc.message
        try:
            count, driver = self.device_count(), self.driver_version()
        except NvmlError as exc:
            return False, f"NVML error while listing GPUs: {exc.message}"
        finally:
            self.shutdown()
        if count == 0:
            return False, "NVML found no GPUs"
        return True, f"NVIDIA driver {driver}, {count} GPU(s)"


NvmlLike = Nvml | Any
"""What public entry points accept: the door, or a pynvml-like module (wrapped)."""


def as_nvml(nvml: NvmlLike = None) -> Nvml:
    """The door: ``nvml`` itself, a module wrapped in one, or the real NVML for None."""
    if nvml is None:
        return Nvml.load()
    return nvml if isinstance(nvml, Nvml) else Nvml(nvml)


def maybe_nvml(nvml: NvmlLike = None) -> Nvml | None:
    """``as_nvml``, or None where NVML is not installed or does not initialise here."""
    try:
        door = as_nvml(nvml)
        door.init()
    except NvmlError:
        return None
    door.shutdown()
    return door


@dataclass(frozen=True)
class GpuDevice:
    """One GPU (or MIG instance) behind the door; reads in the units their names say."""

    nvml: Nvml
    handle: Any
    index: int

    def call(self, name: str, *args: Any) -> Any:
        return self.nvml.call(name, self.handle, *args)

    def try_call(self, name: str, *args: Any) -> Any:
        return self.nvml.try_call(name, self.handle, *args)

    # ------------------------------------------------------------------ identity

    def name(self) -> str:
        return as_text(self.call("nvmlDeviceGetName"))

    def uuid(self) -> str:
        return as_text(self.call("nvmlDeviceGetUUID"))

    def parent(self) -> GpuDevice:
        """The whole GPU a MIG instance lives on."""
        return GpuDevice(self.nvml, self.call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle"), -1)

    def mig_enabled(self) -> bool:
        mode = self.try_call("nvmlDeviceGetMigMode")
        return bool(mode[0]) if mode is not None else False

    def architecture(self) -> int | None:
        value = self.try_call("nvmlDeviceGetArchitecture")
        return None if value is None else int(value)

    # ------------------------------------------------------------------ energy and power

    def energy_mj(self) -> int:
        """The total-energy counter (mJ since driver load); ``NvmlNotSupported`` before Volta."""
        return int(self.call("nvmlDeviceGetTotalEnergyConsumption"))

    def power_mw(self) -> float:
        """``nvmlDeviceGetPowerUsage``: a moving average on Ampere and newer."""
        return float(self.call("nvmlDeviceGetPowerUsage"))

    def instant_power_mw(self) -> float:
        """The instantaneous-power field; ``NvmlNotSupported`` where the driver lacks it."""
        (value,) = self.call("nvmlDeviceGetFieldValues", [NVML_FI_DEV_POWER_INSTANT])
        if value.nvmlReturn != NVML_SUCCESS:
            raise self.nvml.translate(_Returned(value.nvmlReturn), "power instant field")
        return float(value.value.uiVal)

    def power_limit_w(self) -> float | None:
        value = self.try_call("nvmlDeviceGetEnforcedPowerLimit")
        return None if value is None else float(value) / 1000

    # ------------------------------------------------------------------ state (best effort)

    def temperature_c(self) -> float | None:
        value = self.try_call("nvmlDeviceGetTemperature", NVML_TEMPERATURE_GPU)
        return None if value is None else float(value)

    def clock_mhz(self, kind: int = NVML_CLOCK_SM) -> int | None:
        return self.try_call("nvmlDeviceGetClockInfo", kind)

    def max_clock_mhz(self, kind: int = NVML_CLOCK_SM) -> int | None:
        return self.try_call("nvmlDeviceGetMaxClockInfo", kind)

    def throttle_reasons(self) -> int | None:
        """Clock event (throttle) reason bitmask; None when unreadable."""
        value = self.try_call("nvmlDeviceGetCurrentClocksEventReasons")
        if value is None:
            value = self.try_call("nvmlDeviceGetCurrentClocksThrottleReasons")
        return None if value is None else int(value)

    def memory_mib(self) -> tuple[float, float] | None:
        """(used, total) MiB of device memory; None when unreadable."""
        info = self.try_call("nvmlDeviceGetMemoryInfo")
        return None if info is None else (info.used / 2**20, info.total / 2**20)


class _Returned(Exception):
    """A non-success ``nvmlReturn`` inside a field value, for the translator."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML return code {value}")
        self.value = value
