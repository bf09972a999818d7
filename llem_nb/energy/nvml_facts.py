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
from llem_nb.energy.device import (
    NVML_CLOCK_MEM,
    NVML_CLOCK_SM,
    GpuDevice,
    Nvml,
    as_text,
)
from llem_nb.errors import NvmlError

NVML_DEVICE_ARCH_AMPERE = 7
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
XID_CRITICAL_ERROR = 0x8


def _as_text(value: Any) -> str | None:
    return None if value is None else as_text(value)


def _scaled(value: Any, divisor: float) -> float | None:
    return None if value is None else float(value) / divisor


def _cuda_version(value: Any) -> str | None:
    return None if value is None else f"{int(value) // 1000}.{int(value) % 1000 // 10}"


def device_facts(device: GpuDevice, index: int) -> dict[str, Any]:
    """What the environment record keeps about one GPU; None for anything unreadable."""
    memory = device.memory_mib()
    mig = device.try_call("nvmlDeviceGetMigMode")
    persistence = device.try_call("nvmlDeviceGetPersistenceMode")
    name, uuid = device.try_call("nvmlDeviceGetName"), device.try_call("nvmlDeviceGetUUID")
    nvml = device.nvml
    driver = nvml.try_call("nvmlSystemGetDriverVersion")
    return {
        "index": index,
        "name": _as_text(name),
        "uuid": _as_text(uuid),
        "driver_version": _as_text(driver),
        "cuda_driver_version": _cuda_version(nvml.cuda_driver_version()),
        "power_limit_w": _scaled(device.try_call("nvmlDeviceGetPowerManagementLimit"), 1000),
        "enforced_power_limit_w": device.power_limit_w(),
        "persistence_mode": None if persistence is None else bool(persistence),
        "sm_clock_mhz": device.clock_mhz(NVML_CLOCK_SM),
        "memory_clock_mhz": device.clock_mhz(NVML_CLOCK_MEM),
        "max_sm_clock_mhz": device.max_clock_mhz(NVML_CLOCK_SM),
        "max_memory_clock_mhz": device.max_clock_mhz(NVML_CLOCK_MEM),
        "mig_mode": None if mig is None else bool(mig[0]),
        "temperature_c": device.try_call("nvmlDeviceGetTemperature", 0),
        "memory_total_mib": None if memory is None else round(memory[1]),
        "throttle_reasons": device.throttle_reasons(),
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


def _gpu_processes(device: GpuDevice) -> dict[int, int]:
    """pid → GPU memory bytes (0 when unknown) of compute and graphics processes."""
    procs: dict[int, int] = {}
    for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        found = device.try_call(call)
        for proc in found if found is not None else device.try_call(f"{call}_v2") or []:
            procs[int(proc.pid)] = max(procs.get(int(proc.pid), 0), proc.usedGpuMemory or 0)
    return procs


def other_processes(device: GpuDevice, ours: set[int]) -> list[int]:
    """PIDs on this GPU that are not this process or its children.

    In a container NVML reports host PIDs, so ours may not be listed at all; then the
    process using the most GPU memory is taken to be ours (we hold the model).
    """
    procs = _gpu_processes(device)
    others = {pid: mem for pid, mem in procs.items() if pid not in ours}
    if others and len(others) == len(procs):
        del others[max(others, key=lambda pid: (others[pid], -pid))]
    return sorted(others)


def snapshot(devices: Sequence[GpuDevice], now: Callable[[], float]) -> StateSample:
    """Temperature, SM clock, memory used and throttle reasons of each GPU, now."""
    t = now()
    temps, clocks, memory, reasons = [], [], [], []
    for device in devices:
        temps.append(device.try_call("nvmlDeviceGetTemperature", 0))
        clocks.append(device.clock_mhz(NVML_CLOCK_SM))
        info = device.memory_mib()
        memory.append(None if info is None else info[0])
        reasons.append(device.throttle_reasons())
    return StateSample(t, tuple(temps), tuple(clocks), tuple(memory), tuple(reasons))


def power_avg_s(device: GpuDevice, instant: bool) -> float | None:
    """Seconds ``nvmlDeviceGetPowerUsage`` averages over, by NVIDIA's documentation: 1 s on
    Ampere and later except GA100 (A100), instantaneous (0) before; 0 when the
    instantaneous-power field is what we read; None when the architecture is unknown."""
    if instant:
        return 0.0
    arch = device.architecture()
    name = _as_text(device.try_call("nvmlDeviceGetName")) or ""
    if arch is None or int(arch) > 0xFFFF:
        return None
    return 1.0 if int(arch) >= NVML_DEVICE_ARCH_AMPERE and "A100" not in name else 0.0


def edge_state(device: GpuDevice) -> dict[str, Any]:
    """Clocks, power limit, temperature and uncorrected ECC count at a window edge."""
    return {
        "sm_clock_mhz": device.clock_mhz(NVML_CLOCK_SM),
        "memory_clock_mhz": device.clock_mhz(NVML_CLOCK_MEM),
        "power_limit_w": device.power_limit_w(),
        "temperature_c": device.try_call("nvmlDeviceGetTemperature", 0),
        "ecc_uncorrected": device.try_call(
            "nvmlDeviceGetTotalEccErrors",
            NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            NVML_VOLATILE_ECC,
        ),
        "throttle_reasons": device.throttle_reasons(),
    }


class XidWatch:
    """Critical XID errors NVML reports for the watched GPUs while a window is open.

    Best effort: a driver or GPU without event support is simply not watched
    (``watching`` says so).
    """

    def __init__(self, nvml: Nvml, devices: Sequence[GpuDevice]) -> None:
        self._nvml = nvml
        self._set = nvml.try_call("nvmlEventSetCreate")
        self.watching: list[int] = []
        if self._set is None:
            return
        for k, device in enumerate(devices):
            supported = device.try_call("nvmlDeviceGetSupportedEventTypes")
            if supported is None or not int(supported) & XID_CRITICAL_ERROR:
                continue
            try:
                device.call("nvmlDeviceRegisterEvents", XID_CRITICAL_ERROR, self._set)
            except NvmlError:
                continue
            self.watching.append(k)
        self._uuids = [_as_text(d.try_call("nvmlDeviceGetUUID")) for d in devices]

    def drain(self) -> list[tuple[int, int]]:
        """(device position, XID code) of every event waiting; never blocks."""
        if self._set is None or not self.watching:
            return []
        found: list[tuple[int, int]] = []
        v2 = hasattr(self._nvml.module, "nvmlEventSetWait_v2")
        wait = "nvmlEventSetWait_v2" if v2 else "nvmlEventSetWait"
        for _ in range(1000):
            try:
                event = self._nvml.call(wait, self._set, 0)
            except NvmlError:
                break
            uuid = _as_text(self._nvml.try_call("nvmlDeviceGetUUID", event.device))
            position = self._uuids.index(uuid) if uuid in self._uuids else -1
            found.append((position, int(event.eventData)))
        return found

    def close(self) -> None:
        if self._set is not None:
            self._nvml.try_call("nvmlEventSetFree", self._set)
            self._set = None
