"""Where the PyTorch backend puts a model: CUDA numbering, how many GPUs, how much memory.

Pure functions of what NVML and ``torch.cuda`` report (both passed in), so they are tested
with the NVML simulator and a fake ``torch.cuda`` view. Nothing here imports torch.

- CUDA numbers GPUs fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, while ``gpus``
  entries and the meter use NVML's (PCI) numbering: ``pin_pci_order`` sets the variable
  before CUDA starts; once CUDA has started in another order, ``nvml_uuids`` lets an NVML
  index be matched to its CUDA ordinal by UUID.
- ``gpus="all"`` takes one GPU when the model fits there (``all_gpus_plan``), so a small
  model is not pipelined over every GPU while the meter counts their idle power.
- ``max_memory`` gives accelerate each GPU's free memory less a margin, not its total.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.device import NvmlLike, maybe_nvml
from llem_nb.energy.nvml_devices import bare_uuid, visible_nvml_indices
from llem_nb.errors import ConfigError, NvmlError

MEMORY_MARGIN = 0.10
"""Share of each GPU's free memory left out of ``max_memory`` (allocator, CUDA context)."""
FIT_HEADROOM = 1.25
"""The weights fit one GPU when weights × this ≤ its free memory (room for the KV cache
and activations)."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}


def pin_pci_order(cuda: Any) -> bool:
    """Set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` unless CUDA already started or the user chose
    an order; whether CUDA's numbering is now (or will be) NVML's PCI numbering."""
    order = os.environ.get("CUDA_DEVICE_ORDER")
    if order is None and not cuda.is_initialized():
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return True
    return order == "PCI_BUS_ID"


def nvml_uuids(nvml: NvmlLike = None) -> list[str]:
    """Every GPU's UUID in NVML index order; [] without NVML."""
    door = maybe_nvml(nvml)
    if door is None:
        return []
    with door.session():
        return [device.uuid() for device in door.devices()]


def refuse_cpu_fallback(nvml_count: int, cuda: Any, torch_version: str, torch_cuda: Any) -> None:
    """``gpus="all"``: ``ConfigError`` when NVML sees GPUs that torch cannot use, instead
    of a silent run on the CPU (a CPU-only torch wheel, a driver older than the wheel)."""
    if nvml_count <= 0 or (cuda.is_available() and cuda.device_count() > 0):
        return
    built = f"built for CUDA {torch_cuda}" if torch_cuda else "a CPU-only build"
    raise ConfigError(
        f"gpus='all': NVML sees {nvml_count} GPU(s) but torch {torch_version} ({built}) "
        "cannot use any, so the run would measure the CPU",
        field="gpus",
        fix="install a torch wheel for this driver's CUDA (pip install torch --index-url "
        "https://download.pytorch.org/whl/cu<NNN>), or set gpus=0 to measure the CPU",
    )


def weights_bytes(model_dir: Path, dtype_bytes: int) -> int:
    """Bytes the weights take at ``dtype_bytes`` per parameter: the weight files' size,
    scaled from the dtype they are stored in (config.json's ``torch_dtype``/``dtype``)."""
    files = [p for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
    stored = sum(p.stat().st_size for p in files)
    try:
        data = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        data = {}
    name = str(data.get("dtype") or data.get("torch_dtype") or "float32")
    return stored * dtype_bytes // _BYTES.get(name, 4)


@dataclass(frozen=True)
class AllGpusPlan:
    """What ``gpus="all"`` became: the ordinals used and why (stored on the result)."""

    ordinals: list[int]
    note: str


def all_gpus_plan(model_bytes: int, free_bytes: Sequence[int]) -> AllGpusPlan:
    """One GPU (ordinal 0) when the weights fit there with headroom, else every GPU."""
    count = len(free_bytes)
    gib = model_bytes / 2**30
    if count <= 1:
        return AllGpusPlan(list(range(count)), f"{count} GPU visible")
    if model_bytes * FIT_HEADROOM <= free_bytes[0]:
        return AllGpusPlan(
            [0],
            f"gpus='all': 1 of {count} GPUs; the weights ({gib:.2f} GiB) fit one "
            f"(free {free_bytes[0] / 2**30:.1f} GiB)",
        )
    return AllGpusPlan(
        list(range(count)),
        f"gpus='all': the weights ({gib:.2f} GiB) do not fit one GPU "
        f"(free {free_bytes[0] / 2**30:.1f} GiB): spread over {count} (device_map)",
    )


def free_memory(cuda: Any, ordinals: Sequence[int]) -> list[int]:
    """Free bytes per ordinal (``torch.cuda.mem_get_info``)."""
    return [int(cuda.mem_get_info(i)[0]) for i in ordinals]


def placement(
    config: ExperimentConfig, path: Path, ordinals: list[int], cuda: Any
) -> tuple[list[int], str | None]:
    """``gpus="all"`` over several GPUs: one GPU when the weights fit there, else all (an
    explicit ``pytorch.device_map`` keeps every GPU); the ordinals and a note for the
    result."""
    if config.gpus != "all" or len(ordinals) < 2 or config.pytorch.device_map:
        return ordinals, None
    size = weights_bytes(path, DTYPE_BYTES[config.precision])
    plan = all_gpus_plan(size, free_memory(cuda, ordinals))
    return [ordinals[i] for i in plan.ordinals], plan.note


def max_memory(cuda: Any, ordinals: Sequence[int], margin: float = MEMORY_MARGIN) -> dict[int, int]:
    """accelerate's ``max_memory``: each GPU's free memory now, less ``margin`` of it, so
    what other processes hold is left alone and the KV cache has room."""
    free = free_memory(cuda, ordinals)
    return {i: int(f * (1 - margin)) for i, f in zip(ordinals, free, strict=True)}


def ordinal_for_nvml_index(index: int, nvml_ids: Sequence[str], cuda_ids: Sequence[str]) -> int:
    """The CUDA ordinal of NVML GPU ``index``, matched by UUID (any ``CUDA_DEVICE_ORDER``)."""
    if index >= len(nvml_ids):
        raise ConfigError(
            f"GPU {index} is out of range: NVML sees {len(nvml_ids)}",
            field="gpus",
            fix="check `nvidia-smi -L`",
        )
    wanted = bare_uuid(nvml_ids[index])
    for ordinal, uuid in enumerate(cuda_ids):
        if bare_uuid(uuid) == wanted:
            return ordinal
    raise ConfigError(
        f"GPU {index} ({nvml_ids[index]}) is not visible to CUDA here",
        field="gpus",
        fix="assign a GPU listed in CUDA_VISIBLE_DEVICES, or unset that variable",
    )


def nvml_visible_count(nvml: NvmlLike = None) -> int:
    """GPUs NVML exposes to this process under ``CUDA_VISIBLE_DEVICES``; 0 without NVML."""
    door = maybe_nvml(nvml)
    if door is None:
        return 0
    try:
        return len(visible_nvml_indices(door, os.environ.get("CUDA_VISIBLE_DEVICES")))
    except NvmlError:
        return 0
