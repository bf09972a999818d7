"""What a measured GPU is like, read through NVML without failing: facts for the
environment record, state snapshots for the timeseries, and other processes using it.

Every read here is best effort: a call this driver or pynvml lacks gives None, never
an error, since none of these facts is the energy itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from llem_nb.energy.base import StateSample

NVML_FI_DEV_POWER_INSTANT = 186
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_DEVICE_ARCH_AMPERE = 7
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
XID_CRITICAL_ERROR = 0x8


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def try_call(nvml: Any, call: str, *args: Any) -> Any:
    """``nvml.call(*args)``, or None when the call fails or this pynvml/driver lacks it."""
    fn = getattr(nvml, call, None)
    if fn is None:
        return None
    mismatch = getattr(nvml, "NVMLLibraryMismatchError", nvml.NVMLError)
    try:
        return fn(*args)
    except (nvml.NVMLError, mismatch):
        return None


def throttle_reasons(nvml: Any, handle: Any) -> int | None:
    """Clock event (throttle) reason bitmask; None when unreadable."""
    value = try_call(nvml, "nvmlDeviceGetCurrentClocksEventReasons", handle)
    if value is None:
        value = try_call(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", handle)
    return None if value is None else int(value)


def _scaled(value: Any, divisor: float) -> float | None:
    return None if value is None else float(value) / divisor


def _cuda_version(value: Any) -> str | None:
    return None if value is None else f"{int(value) // 1000}.{int(value) % 1000 // 10}"


def device_facts(nvml: Any, handle: Any, index: int) -> dict[str, Any]:
    """What the environment record keeps about one GPU; None for anything unreadable."""
    memory = try_call(nvml, "nvmlDeviceGetMemoryInfo", handle)
    mig = try_call(nvml, "nvmlDeviceGetMigMode", handle)
    persistence = try_call(nvml, "nvmlDeviceGetPersistenceMode", handle)
    name, uuid = (
        try_call(nvml, "nvmlDeviceGetName", handle),
        try_call(nvml, "nvmlDeviceGetUUID", handle),
    )
    driver = try_call(nvml, "nvmlSystemGetDriverVersion")
    return {
        "index": index,
        "name": _as_text(name),
        "uuid": _as_text(uuid),
        "driver_version": _as_text(driver),
        "cuda_driver_version": _cuda_version(try_call(nvml, "nvmlSystemGetCudaDriverVersion")),
        "power_limit_w": _scaled(try_call(nvml, "nvmlDeviceGetPowerManagementLimit", handle), 1000),
        "enforced_power_limit_w": _scaled(
            try_call(nvml, "nvmlDeviceGetEnforcedPowerLimit", handle), 1000
        ),
        "persistence_mode": None if persistence is None else bool(persistence),
        "sm_clock_mhz": try_call(nvml, "nvmlDeviceGetClockInfo", handle, NVML_CLOCK_SM),
        "memory_clock_mhz": try_call(nvml, "nvmlDeviceGetClockInfo", handle, NVML_CLOCK_MEM),
        "max_sm_clock_mhz": try_call(nvml, "nvmlDeviceGetMaxClockInfo", handle, NVML_CLOCK_SM),
        "max_memory_clock_mhz": try_call(nvml, "nvmlDeviceGetMaxClockInfo", handle, NVML_CLOCK_MEM),
        "mig_mode": None if mig is None else bool(mig[0]),
        "temperature_c": try_call(nvml, "nvmlDeviceGetTemperature", handle, 0),
        "memory_total_mib": None if memory is None else round(memory.total / 2**20),
        "throttle_reasons": throttle_reasons(nvml, handle),
    }


def own_pids() -> set[int]:
    """This process and its descendants (vLLM and TP workers run in children)."""
    me = os.getpid()
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return {me}
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = {me}, [me]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _gpu_processes(nvml: Any, handle: Any) -> dict[int, int]:
    """pid → GPU memory bytes (0 when unknown) of compute and graphics processes."""
    procs: dict[int, int] = {}
    for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        found = try_call(nvml, call, handle)
        for proc in found if found is not None else try_call(nvml, f"{call}_v2", handle) or []:
            procs[int(proc.pid)] = max(procs.get(int(proc.pid), 0), proc.usedGpuMemory or 0)
    return procs


def other_processes(nvml: Any, handle: Any, ours: set[int]) -> list[int]:
    """PIDs on this GPU that are not this process or its children.

    In a container NVML reports host PIDs, so ours may not be listed at all; then the
    process using the most GPU memory is taken to be ours (we hold the model).
    """
    procs = _gpu_processes(nvml, handle)
    others = {pid: mem for pid, mem in procs.items() if pid not in ours}
    if others and len(others) == len(procs):
        del others[max(others, key=lambda pid: (others[pid], -pid))]
    return sorted(others)


def snapshot(nvml: Any, handles: Sequence[Any], now: Callable[[], float]) -> StateSample:
    """Temperature, SM clock, memory used and throttle reasons of each GPU, now."""
    t = now()
    temps, clocks, memory, reasons = [], [], [], []
    for h in handles:
        temps.append(try_call(nvml, "nvmlDeviceGetTemperature", h, 0))
        clocks.append(try_call(nvml, "nvmlDeviceGetClockInfo", h, NVML_CLOCK_SM))
        info = try_call(nvml, "nvmlDeviceGetMemoryInfo", h)
        memory.append(None if info is None else info.used / 2**20)
        reasons.append(throttle_reasons(nvml, h))
    return StateSample(t, tuple(temps), tuple(clocks), tuple(memory), tuple(reasons))


def power_avg_s(nvml: Any, handle: Any, instant: bool) -> float | None:
    """Seconds ``nvmlDeviceGetPowerUsage`` averages over, by NVIDIA's documentation: 1 s on
    Ampere and later except GA100 (A100), instantaneous (0) before; 0 when the
    instantaneous-power field is what we read; None when the architecture is unknown."""
    if instant:
        return 0.0
    arch = try_call(nvml, "nvmlDeviceGetArchitecture", handle)
    name = _as_text(try_call(nvml, "nvmlDeviceGetName", handle)) or ""
    if arch is None or int(arch) > 0xFFFF:
        return None
    return 1.0 if int(arch) >= NVML_DEVICE_ARCH_AMPERE and "A100" not in name else 0.0


def edge_state(nvml: Any, handle: Any) -> dict[str, Any]:
    """Clocks, power limit, temperature and uncorrected ECC count at a window edge."""
    limit = try_call(nvml, "nvmlDeviceGetEnforcedPowerLimit", handle)
    return {
        "sm_clock_mhz": try_call(nvml, "nvmlDeviceGetClockInfo", handle, NVML_CLOCK_SM),
        "memory_clock_mhz": try_call(nvml, "nvmlDeviceGetClockInfo", handle, NVML_CLOCK_MEM),
        "power_limit_w": _scaled(limit, 1000),
        "temperature_c": try_call(nvml, "nvmlDeviceGetTemperature", handle, 0),
        "ecc_uncorrected": try_call(
            nvml,
            "nvmlDeviceGetTotalEccErrors",
            handle,
            NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            NVML_VOLATILE_ECC,
        ),
        "throttle_reasons": throttle_reasons(nvml, handle),
    }


class XidWatch:
    """Critical XID errors NVML reports for the watched GPUs while a window is open.

    Best effort: a driver or GPU without event support is simply not watched
    (``watching`` says so).
    """

    def __init__(self, nvml: Any, handles: Sequence[Any]) -> None:
        self._nvml = nvml
        self._set = try_call(nvml, "nvmlEventSetCreate")
        self.watching: list[int] = []
        if self._set is None:
            return
        for k, handle in enumerate(handles):
            supported = try_call(nvml, "nvmlDeviceGetSupportedEventTypes", handle)
            if supported is None or not int(supported) & XID_CRITICAL_ERROR:
                continue
            mismatch = getattr(nvml, "NVMLLibraryMismatchError", nvml.NVMLError)
            try:
                nvml.nvmlDeviceRegisterEvents(handle, XID_CRITICAL_ERROR, self._set)
            except (nvml.NVMLError, mismatch, AttributeError):
                continue
            self.watching.append(k)
        self._uuids = [_as_text(try_call(nvml, "nvmlDeviceGetUUID", h)) for h in handles]

    def drain(self) -> list[tuple[int, int]]:
        """(device position, XID code) of every event waiting; never blocks."""
        if self._set is None or not self.watching:
            return []
        found: list[tuple[int, int]] = []
        wait = getattr(self._nvml, "nvmlEventSetWait_v2", None) or self._nvml.nvmlEventSetWait
        for _ in range(1000):
            try:
                event = wait(self._set, 0)
            except self._nvml.NVMLError:
                break
            uuid = _as_text(try_call(self._nvml, "nvmlDeviceGetUUID", event.device))
            position = self._uuids.index(uuid) if uuid in self._uuids else -1
            found.append((position, int(event.eventData)))
        return found

    def close(self) -> None:
        if self._set is not None:
            try_call(self._nvml, "nvmlEventSetFree", self._set)
            self._set = None
