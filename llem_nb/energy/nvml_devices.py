"""NVML outside the measured window: naming GPUs, checking what is visible.

- ``visible_nvml_indices`` / ``nvml_indices_for``: CUDA devices → NVML indices, by UUID
  (CUDA's own order need not be NVML's), through ``CUDA_VISIBLE_DEVICES`` otherwise.
- ``check_visible_devices``: the preflight that stops a run whose ``CUDA_VISIBLE_DEVICES``
  names a GPU that is not there (CUDA would silently drop it and every later entry).
- ``visible_temperatures``: the idle reference for the window cooldown.

What a measured GPU is like (facts, state, other processes) is in ``nvml_facts``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from llem_nb.energy.device import GpuDevice, Nvml, NvmlLike, as_nvml, maybe_nvml
from llem_nb.errors import MeterError, NvmlError, PreflightError

CUDA_VISIBLE_FIX = (
    "set CUDA_VISIBLE_DEVICES to indices or UUIDs that `nvidia-smi -L` lists, or unset it"
)


def bare_uuid(uuid: str) -> str:
    """A UUID without its ``GPU-`` prefix, lower case, so torch's and NVML's forms compare."""
    uuid = uuid.strip().lower()
    return uuid[4:] if uuid.startswith("gpu-") else uuid


def _all_uuids(nvml: Nvml) -> list[str]:
    return [device.uuid() for device in nvml.devices()]


def visible_nvml_indices(nvml: NvmlLike, cuda_visible_devices: str | None) -> list[int]:
    """NVML indices of the GPUs a ``CUDA_VISIBLE_DEVICES`` value exposes, in CUDA order.

    Entries are indices (assumed in PCI bus order, i.e. ``CUDA_DEVICE_ORDER=PCI_BUS_ID``),
    GPU UUIDs or unique UUID prefixes (``GPU-`` optional), or ``MIG-`` UUIDs, which map to
    their parent GPU. As in CUDA, a negative index ends the list (``-1`` hides all GPUs).
    None means every GPU. An entry that names no GPU is a ``MeterError`` naming it.
    """
    with as_nvml(nvml).session() as nv:
        uuids = _all_uuids(nv)
        if cuda_visible_devices is None:
            return list(range(len(uuids)))
        result: list[int] = []
        for entry in filter(None, (e.strip() for e in cuda_visible_devices.split(","))):
            if entry.startswith("-"):
                break
            index = _entry_index(nv, entry, uuids)
            if index not in result:
                result.append(index)
        return result


def _entry_index(nvml: Nvml, entry: str, uuids: list[str]) -> int:
    """One ``CUDA_VISIBLE_DEVICES`` entry as an NVML index; MeterError naming it if none fits."""
    hits: list[int] = []
    if entry.isdigit():
        hits = [int(entry)] if int(entry) < len(uuids) else []
    elif entry.upper().startswith("MIG-"):
        try:
            parent = nvml.device_by_uuid(entry).parent()
            hits = [uuids.index(parent.uuid())]
        except (NvmlError, ValueError):
            hits = []
    else:
        hits = [i for i, u in enumerate(uuids) if bare_uuid(u).startswith(bare_uuid(entry))]
    if len(hits) != 1:
        raise MeterError(
            f"CUDA_VISIBLE_DEVICES entry {entry!r} matches {len(hits) or 'no'} GPUs; "
            f"NVML sees: {', '.join(uuids) or 'none'}",
            fix="use an index, a unique UUID prefix or a MIG UUID from `nvidia-smi -L`",
        )
    return hits[0]


def check_visible_devices(cuda_visible_devices: str | None, nvml: NvmlLike = None) -> None:
    """``PreflightError`` when ``CUDA_VISIBLE_DEVICES`` names a GPU this machine lacks.

    Without NVML (no driver) there is nothing to check against and torch decides.
    """
    if cuda_visible_devices is None:
        return
    nv = maybe_nvml(nvml)
    if nv is None:
        return
    try:
        visible_nvml_indices(nv, cuda_visible_devices)
    except MeterError as exc:
        raise PreflightError(
            f"CUDA_VISIBLE_DEVICES={cuda_visible_devices!r} names a GPU that is not here: "
            f"{exc.message}",
            fix=CUDA_VISIBLE_FIX,
        ) from None


def nvml_indices_for(
    ordinals: Sequence[int],
    uuids: Sequence[str] = (),
    cuda_visible_devices: str | None = None,
    nvml: NvmlLike = None,
) -> list[int]:
    """NVML indices of CUDA devices ``ordinals`` (torch numbering).

    ``uuids[i]`` is the UUID CUDA reports for ``ordinals[i]`` (torch's
    ``get_device_properties(i).uuid``); it is matched against NVML's UUIDs, which is
    right whatever ``CUDA_DEVICE_ORDER`` is. Devices without a matching UUID (MIG
    instances) map through ``CUDA_VISIBLE_DEVICES``. Without NVML: numeric
    ``CUDA_VISIBLE_DEVICES`` entries, else the ordinal itself.
    """
    nv = maybe_nvml(nvml)
    if nv is None:
        visible = [e.strip() for e in (cuda_visible_devices or "").split(",") if e.strip()]
        return [
            int(visible[o])
            if cuda_visible_devices and o < len(visible) and visible[o].isdigit()
            else o
            for o in ordinals
        ]
    exposed = visible_nvml_indices(nv, cuda_visible_devices)
    with nv.session():
        nvml_uuids = [bare_uuid(u) for u in _all_uuids(nv)]
    out: list[int] = []
    for i, ordinal in enumerate(ordinals):
        wanted = bare_uuid(uuids[i]) if i < len(uuids) and uuids[i] else ""
        if wanted in nvml_uuids:
            out.append(nvml_uuids.index(wanted))
        elif ordinal < len(exposed):
            out.append(exposed[ordinal])
        else:
            raise MeterError(
                f"CUDA device {ordinal} has no NVML counterpart "
                f"(CUDA_VISIBLE_DEVICES={cuda_visible_devices!r})",
                fix=CUDA_VISIBLE_FIX,
            )
    return out


def visible_temperatures(
    cuda_visible_devices: str | None, nvml: NvmlLike = None
) -> dict[str, float]:
    """Temperature (°C) of each GPU ``CUDA_VISIBLE_DEVICES`` exposes, by ``gpu{index}``;
    {} without NVML."""
    nv = maybe_nvml(nvml)
    if nv is None:
        return {}
    indices = visible_nvml_indices(nv, cuda_visible_devices)
    with nv.session():
        temps = {f"gpu{i}": nv.device(i).temperature_c() for i in indices}
    return {label: t for label, t in temps.items() if t is not None}


class Thermometer:
    """GPU temperatures (°C) by NVML index, for the GPUs ``CUDA_VISIBLE_DEVICES`` exposes."""

    def __init__(self, nvml: NvmlLike = None) -> None:
        self._initialised = False
        self._nvml = nv = as_nvml(nvml)
        self._devices: list[GpuDevice] = []
        try:
            self.indices = visible_nvml_indices(nv, os.environ.get("CUDA_VISIBLE_DEVICES"))
            nv.init()
            self._initialised = True
            self._devices = [nv.device(i) for i in self.indices]
        except NvmlError:
            self.close()
            raise
        if not self.indices:
            self.close()
            raise MeterError("NVML sees no GPU")

    def read(self) -> dict[int, float]:
        try:
            return {d.index: float(d.call("nvmlDeviceGetTemperature", 0)) for d in self._devices}
        except NvmlError as exc:
            raise MeterError(f"NVML could not read a GPU temperature: {exc.message}") from exc

    def close(self) -> None:
        if self._initialised:
            self._initialised = False
            self._nvml.shutdown()
