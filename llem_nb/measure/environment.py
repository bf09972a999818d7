"""What machine and software a result was measured on (recorded with every result).

Host facts (CPU, RAM, OS, Python, package versions) are read once per process; the
working directory's git commit is read from ``.git`` without running git; in a
container the image and digest come from ``LLEM_IMAGE`` / ``LLEM_IMAGE_DIGEST`` when
the runner set them. GPU facts are added by the meter (``EnergyMeter.device_facts``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

from llem_nb._version import __version__

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


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.removeprefix("gitdir:").strip()).resolve()
    return None


def git_commit(start: str | os.PathLike[str] | None = None) -> str | None:
    """The commit checked out in the git work tree around ``start`` (default: cwd), if any."""
    try:
        git = _git_dir(Path(start or os.getcwd()).resolve())
        if git is None:
            return None
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.removeprefix("ref:").strip()
        for base in (git, _common_dir(git)):
            if (base / ref).is_file():
                return (base / ref).read_text().strip() or None
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return sha
    except OSError:
        return None
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    return (git / common.read_text().strip()).resolve() if common.is_file() else git


def environment_record() -> dict[str, Any]:
    """Software and host facts; GPU facts are added by the meter and backend."""
    record = dict(_static_record())
    record["in_container"] = os.path.exists("/.dockerenv") or "LLEM_IN_CONTAINER" in os.environ
    record["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    record["container_image"] = os.environ.get("LLEM_IMAGE")
    record["container_image_digest"] = os.environ.get("LLEM_IMAGE_DIGEST")
    record["git_commit"] = git_commit()
    return record
