"""Container images: default names, which one this host can run, reference checks, listing.

Default image per backend: ``ghcr.io/llem-nb/{backend}:{version}-cuda{major}`` or
``…-cpu``. The CUDA major comes from the NVIDIA driver (NVML) when there is one; a
host with only ``nvcc`` (a toolkit, no driver) names a ``-cuda{major}`` image that
cannot run there, so experiments that ask for no GPU (``gpus=0``) take the ``-cpu``
image instead, and ``image_choice`` says why. Building is in ``build``.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llem_nb._version import __version__
from llem_nb.energy.device import NvmlLike, maybe_nvml
from llem_nb.errors import ConfigError, PreflightError
from llem_nb.runners.docker.cuda_wheels import image_major

REGISTRY = "ghcr.io/llem-nb"
IMAGE_BACKENDS = ("pytorch", "vllm")
LABEL_PREFIX = "org.llem-nb"
REFERENCE_FIX = (
    "use [registry[:port]/]name[:tag][@sha256:digest] — lowercase letters, digits and . _ - / "
    "in the name — e.g. docker:ghcr.io/llem-nb/pytorch:0.1.0-cuda12"
)

# Docker's reference grammar (github.com/distribution/reference, regexp.go).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@[]")


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: ``name[:tag][@digest]``."""

    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return (
            self.name
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


def parse_image(reference: str, *, field: str = "runner") -> ImageRef:
    """Validate ``reference`` against Docker's grammar; ``ConfigError`` names the field and fix."""
    ref = reference.strip()
    bad = sorted({c for c in ref if c not in _ALLOWED})
    match = _REFERENCE.match(ref) if ref and not bad else None
    if not ref:
        why = "it is empty"
    elif bad:
        why = f"characters not allowed: {' '.join(map(repr, bad))}"
    elif match is None:
        why = (
            "uppercase letters are only allowed in the registry host"
            if _upper_path(ref)
            else ("bad format")
        )
    elif len(match["name"]) > 255:
        why = "the name is longer than 255 characters"
    else:
        why = ""
    if why or match is None:
        raise ConfigError(
            f"{field}: {reference!r} is not a valid image reference ({why})",
            field=field,
            fix=REFERENCE_FIX,
        )
    return ImageRef(match["name"], match["tag"], match["digest"])


def _upper_path(ref: str) -> bool:
    parts = ref.partition("@")[0].split("/")
    path = parts[1:] if len(parts) > 1 else parts
    path[-1] = path[-1].partition(":")[0]
    return any(p != p.lower() for p in path)


def driver_cuda_version(nvml: NvmlLike = None) -> int | None:
    """The CUDA version the NVIDIA driver supports (NVML: 1000 × major + 10 × minor); None
    without a driver. ``nvml``: the door or a pynvml-like module (a simulator in tests)."""
    door = maybe_nvml(nvml)
    if door is None:
        return None
    with door.session():
        version = door.cuda_driver_version()
    return version if version is not None and version > 0 else None


def driver_image_major(driver_cuda: int) -> int:
    """The CUDA major in the tag of the image built for (and run on) this driver: the
    major of torch's newest CUDA build the driver supports, not the driver's own."""
    try:
        return image_major(driver_cuda)
    except PreflightError:
        return driver_cuda // 1000


@functools.lru_cache(maxsize=1)
def _cuda() -> tuple[int | None, bool, str]:
    """(CUDA major of the images for this host, whether an NVIDIA driver is here, where the
    major came from)."""
    version = driver_cuda_version()
    if version is not None:
        return driver_image_major(version), True, "the NVIDIA driver (NVML)"
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None, False, "no NVIDIA driver (NVML) and no nvcc here"
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, False, f"no NVIDIA driver (NVML), and {nvcc} failed: {exc}"
    found = re.search(r"release (\d+)\.", out.stdout)
    if not found:
        return None, False, f"no NVIDIA driver (NVML), and {nvcc} printed no release"
    return int(found.group(1)), False, f"nvcc ({nvcc}) without an NVIDIA driver"


def cuda_major() -> int | None:
    """The CUDA major the NVIDIA driver supports (NVML), else ``nvcc``'s; None on neither."""
    return _cuda()[0]


def has_driver() -> bool:
    """An NVIDIA driver answers here (NVML), so a CUDA image can run."""
    return _cuda()[1]


def cuda_reason() -> str:
    """One line: the CUDA major the image tags use here and where it came from, or why none."""
    major, driver, how = _cuda()
    if major is None:
        return f"{how}: images get the -cpu tag"
    if not driver:
        return (
            f"CUDA {major} from {how}: GPU experiments name -cuda{major} images, which cannot "
            "run on this host; gpus=0 experiments use the -cpu images"
        )
    return f"CUDA {major} from {how}: images tagged -cuda{major}"


def default_image(backend: str, *, version: str = __version__, cuda: int | None = -1) -> str:
    """``ghcr.io/llem-nb/{backend}:{version}-cuda{major}``, or ``…-cpu`` without CUDA."""
    major = cuda_major() if cuda == -1 else cuda
    suffix = f"cuda{major}" if major is not None else "cpu"
    return f"{REGISTRY}/{backend}:{version}-{suffix}"


def image_choice(backend: str, gpus: Any = "all") -> tuple[str, str]:
    """The default image for one experiment of ``backend`` on this host, and why.

    ``gpus=0`` on a host without an NVIDIA driver takes the ``-cpu`` image: a CUDA
    image could not run here, and the experiment needs no GPU.
    """
    major, driver, how = _cuda()
    if major is None:
        return default_image(backend, cuda=None), f"{how}: the CPU image"
    if gpus == 0 and not driver:
        return default_image(backend, cuda=None), (
            f"CUDA {major} from {how}: a -cuda{major} image cannot run here; gpus=0, so the "
            "CPU image"
        )
    image = default_image(backend, cuda=major)
    if not driver:
        return image, f"CUDA {major} from {how}: {image} cannot run on this host"
    return image, f"CUDA {major} from {how}"


def present_for_driver(backend: str, major: int, present: Callable[[str], bool]) -> str | None:
    """A CUDA image here that this driver can run when the one for its own major is missing:
    the newest ``-cuda{m}`` with m ≤ ``major`` that ``present`` finds; None if none is."""
    for m in range(major, 11, -1):
        name = default_image(backend, cuda=m)
        if present(name):
            return name
    return None


def docker_reason(backend: str) -> str:
    """Which default image ``docker`` means for ``backend`` here, for GPU and CPU experiments."""
    gpu_image, why = image_choice(backend, "all")
    cpu_image, _ = image_choice(backend, 0)
    if gpu_image == cpu_image:
        return f"{why}: {gpu_image}"
    return f"{why}; gpus=0 experiments use {cpu_image}"


def is_default_name(image: str) -> bool:
    """An image named the way ``llem-nb images build`` tags (so it can be built here)."""
    return image.startswith(f"{REGISTRY}/")


def build_command(image: str, backend: str) -> str:
    """The ``llem-nb images build`` line that makes ``image`` (a default name); for a
    backend llem_nb has no image recipe for, what to do instead."""
    if backend not in IMAGE_BACKENDS:
        return (
            f"build an image with llem_nb and the {backend} backend yourself and choose it: "
            f"runners {{{backend}: 'docker:<image>'}}"
        )
    cpu = " --cpu" if image.endswith("-cpu") else ""
    return f"llem-nb images build {backend}{cpu}"


def image_present(client: Any, reference: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(reference)
    except ImageNotFound:
        return False
    return True


def list_images(client: Any, backends: tuple[str, ...] = IMAGE_BACKENDS) -> list[dict[str, Any]]:
    """Per backend: the CUDA and CPU default images here, present or not, id, size, labels."""
    from docker.errors import ImageNotFound

    rows = []
    for backend in backends:
        names = [default_image(backend, cuda=None)]
        if cuda_major() is not None:
            names.insert(0, default_image(backend))
        for name in names:
            row: dict[str, Any] = {"backend": backend, "image": name, "present": False}
            row["build"] = build_command(name, backend)
            try:
                image = client.images.get(name)
            except ImageNotFound:
                rows.append(row)
                continue
            labels = (image.attrs.get("Config") or {}).get("Labels") or {}
            row.update(
                present=True,
                id=image.short_id,
                size_mb=round(image.attrs["Size"] / 1e6),
                labels={k.removeprefix(LABEL_PREFIX + "."): v for k, v in labels.items()},
            )
            rows.append(row)
    return rows
