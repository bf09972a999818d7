"""What machine and software a result was measured on (recorded with every result)."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
from typing import Any

from llem_nb import __version__

_PACKAGES = ("torch", "transformers", "vllm", "accelerate", "nvidia-ml-py")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=1)
def _static_record() -> dict[str, Any]:
    record: dict[str, Any] = {
        "llem_nb_version": __version__,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "os": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_gib": _ram_gib(),
    }
    for package in _PACKAGES:
        record[f"{package.replace('-', '_')}_version"] = _version(package)
    return record


def environment_record() -> dict[str, Any]:
    """Software and host facts; GPU facts are added by the meter and backend."""
    record = dict(_static_record())
    record["in_container"] = os.path.exists("/.dockerenv") or "LLEM_IN_CONTAINER" in os.environ
    record["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    return record
