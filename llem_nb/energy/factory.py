"""Energy meters and the factory that picks one: NVML for GPUs, RAPL for CPUs, else an estimate.

``make_meter`` never leaves the source implicit: ``auto`` falls back step by step and
the reading's ``source`` (and, for fallbacks, a warning) says what was used; an
explicit source that is not available here is a ``MeterError`` that says what is
missing and what to set instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llem_nb.energy.base import (
    EnergyMeter,
)
from llem_nb.energy.clock import Clock
from llem_nb.energy.device import NvmlLike, as_nvml
from llem_nb.energy.estimate import EstimateMeter
from llem_nb.energy.null import NullMeter
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.powercap import powercap_root
from llem_nb.energy.rapl import READ_FIX, RaplMeter
from llem_nb.errors import MeterError

if TYPE_CHECKING:
    from llem_nb.config.sections import EnergyConfig


def nvml_available(nvml: NvmlLike = None) -> tuple[bool, str]:
    """Whether NVML initialises and sees a GPU here, and why not (or what it found)."""
    try:
        door = as_nvml(nvml)
    except MeterError as exc:
        return False, exc.message
    return door.available()


def make_meter(
    energy: EnergyConfig,
    gpu_indices: list[int],
    *,
    nvml: NvmlLike = None,
    rapl_root: Path | None = None,
    clock: Clock | None = None,
) -> EnergyMeter:
    """The meter ``energy.source`` asks for; ``gpu_indices`` are the NVML indices in use.

    ``auto``: NVML when the experiment uses GPUs and NVML initialises, else RAPL when
    readable, else ``EstimateMeter`` (flagged). ``nvml``/``rapl`` that are not available
    raise ``MeterError``.
    """
    source = energy.source
    root = powercap_root(rapl_root)
    if source == "none":
        return NullMeter("energy.source is 'none'")
    if source == "estimate":
        return EstimateMeter(energy.cpu_w_per_core)
    if source == "nvml":
        if not gpu_indices:
            raise MeterError(
                "energy.source='nvml' but this experiment uses no GPU",
                fix="set energy.source='auto' (RAPL or the CPU estimate) or run on a GPU",
            )
        ok, why = nvml_available(nvml)
        if not ok:
            raise MeterError(
                f"energy.source='nvml' but NVML is unavailable: {why}",
                fix="install the NVIDIA driver and nvidia-ml-py, or set energy.source='auto'",
            )
        return NvmlMeter(
            gpu_indices, poll_interval_s=energy.poll_interval_s, nvml=nvml, clock=clock
        )
    if source == "rapl":
        if not RaplMeter.available(root):
            raise MeterError(
                f"energy.source='rapl' but no readable RAPL counter under {root}/intel-rapl:*",
                fix=f"{READ_FIX} (Linux on Intel/AMD CPUs only), or set energy.source='auto'",
            )
        return RaplMeter(root)
    if source != "auto":
        raise MeterError(
            f"no energy source named {source!r}; known: auto, nvml, rapl, estimate, none"
        )
    missing: list[str] = []
    if gpu_indices:
        ok, why = nvml_available(nvml)
        if ok:
            return NvmlMeter(
                gpu_indices, poll_interval_s=energy.poll_interval_s, nvml=nvml, clock=clock
            )
        missing.append(f"GPU energy not measured: {why}")
    if RaplMeter.available(root):
        return RaplMeter(root, note="; ".join(missing) or None)
    missing.append(f"no readable RAPL counter under {root}")
    return EstimateMeter(energy.cpu_w_per_core, note="no measured source: " + "; ".join(missing))
