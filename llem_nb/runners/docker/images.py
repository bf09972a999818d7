"""Container images: default names, reference validation, building from ``images/``, listing.

Default image per backend: ``ghcr.io/llem-nb/{backend}:{version}-cuda{major}``, the
CUDA major taken from the NVIDIA driver (NVML) or ``nvcc``. A host with neither
gets the ``-cpu`` tag, which ``llem-nb images build <backend>`` builds there from
``images/cpu/Dockerfile`` (a Debian image that runs this machine's own Python
packages, mounted read-only: see ``HOST_PACKAGES_LABEL``).
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem_nb._version import __version__
from llem_nb.errors import ConfigError

REGISTRY = "ghcr.io/llem-nb"
IMAGE_KINDS = ("pytorch", "vllm", "cpu")
HOST_PACKAGES_LABEL = "org.llem-nb.host-site-packages"
PYTHON_LABEL = "org.llem-nb.python"
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
# CUDA major → (runtime base image, PyTorch wheel index) for images/pytorch and images/vllm.
CUDA_BASES: dict[int, tuple[str, str]] = {
    13: ("nvidia/cuda:13.0.0-runtime-ubuntu22.04", "https://download.pytorch.org/whl/cu130"),
    12: ("nvidia/cuda:12.4.1-runtime-ubuntu22.04", "https://download.pytorch.org/whl/cu124"),
    11: ("nvidia/cuda:11.8.0-runtime-ubuntu22.04", "https://download.pytorch.org/whl/cu118"),
}
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


@functools.lru_cache(maxsize=1)
def _cuda() -> tuple[int | None, str]:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = int(pynvml.nvmlSystemGetCudaDriverVersion())
        finally:
            pynvml.nvmlShutdown()
        if version > 0:
            return version // 1000, "the NVIDIA driver (NVML)"
    except Exception:  # no library, no driver, no GPU: try nvcc
        pass
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None, "no NVIDIA driver (NVML) and no nvcc here"
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"no NVIDIA driver (NVML), and {nvcc} failed: {exc}"
    found = re.search(r"release (\d+)\.", out.stdout)
    if not found:
        return None, f"no NVIDIA driver (NVML), and {nvcc} printed no release"
    return int(found.group(1)), f"nvcc ({nvcc})"


def cuda_major() -> int | None:
    """The CUDA major the NVIDIA driver supports (NVML), else ``nvcc``'s; None on neither."""
    return _cuda()[0]


def cuda_reason() -> str:
    """One line: the CUDA major the image tags use here and where it came from, or why none."""
    major, how = _cuda()
    if major is None:
        return f"{how}: images get the -cpu tag"
    return f"CUDA {major} from {how}: images tagged -cuda{major}"


def default_image(backend: str, *, version: str = __version__, cuda: int | None = -1) -> str:
    """``ghcr.io/llem-nb/{backend}:{version}-cuda{major}``, or ``…-cpu`` without CUDA."""
    major = cuda_major() if cuda == -1 else cuda
    suffix = f"cuda{major}" if major is not None else "cpu"
    return f"{REGISTRY}/{backend}:{version}-{suffix}"


def source_root() -> Path:
    """The source checkout that holds ``images/`` and ``pyproject.toml`` next to the package."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "images").is_dir() or not (root / "pyproject.toml").is_file():
        raise ConfigError(
            f"building images needs the llem_nb source checkout (images/ and pyproject.toml); "
            f"none next to {root}",
            field="context",
            fix="clone the llem_nb repository and run `llem-nb images build` (or `make images`) "
            "there",
        )
    return root


def build_context(root: Path, kind: str) -> io.BytesIO:
    """A small tar build context: the package, pyproject, README and ``images/<kind>``."""
    buf = io.BytesIO()

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "__pycache__" in info.name or info.name.endswith((".pyc", ".pyo")):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in ("pyproject.toml", "README.md", "llem_nb", f"images/{kind}"):
            path = root / rel
            if path.exists():
                tar.add(path, arcname=rel, filter=clean)
    buf.seek(0)
    return buf


def build_image(
    backend: str,
    *,
    client: Any,
    cpu: bool | None = None,
    tag: str | None = None,
    base_image: str | None = None,
    network: str | None = None,
    on_line: Callable[[str], None] = print,
) -> str:
    """Build the backend's image with the tag resolution expects; stream progress to ``on_line``.

    ``cpu`` (default: no CUDA here) builds ``images/cpu/Dockerfile``; otherwise
    ``images/<backend>/Dockerfile`` on the CUDA base for this driver (``CUDA_BASES``).
    """
    from llem_nb.runners.docker.errors import DockerError

    cpu = cuda_major() is None if cpu is None else cpu
    kind = "cpu" if cpu else backend
    if kind not in IMAGE_KINDS:
        raise ConfigError(
            f"no Dockerfile for backend {backend!r}; known: pytorch, vllm (and --cpu)",
            field="backend",
        )
    tag = tag or default_image(backend, cuda=None if cpu else cuda_major())
    parse_image(tag, field="tag")
    args = {"PYTHON_VERSION": f"{sys.version_info.major}.{sys.version_info.minor}"}
    if not cpu:
        cuda_image, torch_index = CUDA_BASES.get(cuda_major() or 12, CUDA_BASES[12])
        args.update(CUDA_IMAGE=cuda_image, TORCH_INDEX=torch_index)
    if base_image:
        args["BASE_IMAGE"] = base_image
    context = build_context(source_root(), kind)
    on_line(f"building {tag} from images/{kind}/Dockerfile")
    stream = client.api.build(
        fileobj=context,
        custom_context=True,
        dockerfile=f"images/{kind}/Dockerfile",
        tag=tag,
        buildargs=args,
        network_mode=network,
        rm=True,
        decode=True,
    )
    for chunk in stream:
        if "error" in chunk:
            raise DockerError(
                f"building {tag} failed: {chunk['error'].strip()}",
                fix=f"read the build output above; images/{kind}/Dockerfile is what was built",
                image=tag,
                category="image",
            )
        text = str(chunk.get("stream", "")).rstrip()
        if text:
            on_line(text)
    return tag


def image_present(client: Any, reference: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(reference)
    except ImageNotFound:
        return False
    return True


def list_images(
    client: Any, backends: tuple[str, ...] = ("pytorch", "vllm")
) -> list[dict[str, Any]]:
    """Per backend: the default image here (and its ``-cpu`` variant), present or not, id, size."""
    from docker.errors import ImageNotFound

    rows = []
    for backend in backends:
        for name in dict.fromkeys((default_image(backend), default_image(backend, cuda=None))):
            row: dict[str, Any] = {"backend": backend, "image": name, "present": False}
            try:
                image = client.images.get(name)
            except ImageNotFound:
                if name == default_image(backend):
                    rows.append(row)
                continue
            row.update(present=True, id=image.short_id, size_mb=round(image.attrs["Size"] / 1e6))
            rows.append(row)
    return rows
