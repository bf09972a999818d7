"""A stand-in for ``torch.cuda`` over the NVML simulator's GPUs, for the readiness check's
``--fake`` mode: CUDA's device list (fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``,
narrowed by ``CUDA_VISIBLE_DEVICES``, fixed once built), free memory per device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

GIB = 2**30


class FakeCuda:
    """``uuids``: the GPUs in NVML (PCI) order; ``fastest_first``: CUDA's default order as
    NVML indices; ``available`` False: a torch that cannot use them (a CPU wheel)."""

    def __init__(
        self,
        uuids: Sequence[str],
        *,
        fastest_first: Sequence[int] | None = None,
        free_gib: float = 70.0,
        available: bool = True,
        initialized: bool = False,
    ) -> None:
        self.uuids = list(uuids)
        self.fastest_first = list(fastest_first or range(len(self.uuids)))
        self.free_b = int(free_gib * GIB)
        self.available = available
        self.devices: list[str] | None = None
        if initialized:
            self._init()

    def _init(self) -> list[str]:
        if self.devices is None:
            pci = os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID"
            order = [self.uuids[i] for i in (range(len(self.uuids)) if pci else self.fastest_first)]
            entries = os.environ.get("CUDA_VISIBLE_DEVICES")
            if entries is not None:
                order = [
                    order[int(e)] if e.isdigit() else next(u for u in self.uuids if u.startswith(e))
                    for e in entries.split(",")
                ]
            self.devices = [u.removeprefix("GPU-") for u in order]
        return self.devices

    def is_available(self) -> bool:
        return self.available

    def is_initialized(self) -> bool:
        return self.devices is not None

    def device_count(self) -> int:
        return len(self._init()) if self.available else 0

    def get_device_properties(self, ordinal: int) -> Any:
        return SimpleNamespace(uuid=self._init()[ordinal], total_memory=80 * GIB)

    def mem_get_info(self, ordinal: int) -> tuple[int, int]:
        return self.free_b, 80 * GIB

    def get_device_capability(self, ordinal: int = 0) -> tuple[int, int]:
        return (9, 0)
