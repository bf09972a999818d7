"""Which CUDA build of torch an image gets, from the host's NVIDIA driver.

A torch wheel built for CUDA X.Y needs a driver that supports CUDA X (within a major, CUDA's
minor-version compatibility covers older drivers); the slim base images carry no
forward-compatibility package. PyPI's ``torch==2.13.0`` is the cu130 build, which a CUDA 12
driver cannot run. So the build picks the newest variant the driver supports (PyTorch's own
index serves the others), tags the image with that variant's CUDA major, and refuses a
wheelhouse whose torch is built for a newer CUDA major than the driver's, saying which index
to use. The runner names the same tag for the same driver (``image_major``).
"""

from __future__ import annotations

from dataclasses import dataclass

from llem_nb.errors import PreflightError

TORCH_INDEX = "https://download.pytorch.org/whl/"
TORCH_CUDA_VARIANTS: tuple[tuple[str, int], ...] = (
    ("cu126", 12060),
    ("cu128", 12080),
    ("cu130", 13000),
)
"""torch 2.13's CUDA builds (name, CUDA version as NVML reports it: 1000 × major + 10 × minor)."""
PYPI_VARIANT = "cu130"
"""The CUDA build PyPI serves for ``torch==2.13.0``."""


def cuda_text(version: int) -> str:
    """NVML's CUDA version number as ``major.minor`` (12080 → ``12.8``)."""
    return f"{version // 1000}.{version % 1000 // 10}"


@dataclass(frozen=True)
class CudaWheel:
    """One CUDA build of torch: ``cu128`` etc., and where pip finds it."""

    name: str
    version: int

    @property
    def major(self) -> int:
        return self.version // 1000

    @property
    def on_pypi(self) -> bool:
        return self.name == PYPI_VARIANT

    @property
    def index_url(self) -> str:
        return f"{TORCH_INDEX}{self.name}"

    def pip_args(self) -> list[str]:
        """pip options that reach this build (none for PyPI's own)."""
        return [] if self.on_pypi else ["--extra-index-url", self.index_url]

    def torch_requirement(self, version: str) -> str:
        """``torch===2.13.0`` (PyPI's build, never a local ``+cpu``) or ``torch==2.13.0+cu128``."""
        return f"torch==={version}" if self.on_pypi else f"torch=={version}+{self.name}"


def wheel_for_driver(driver_cuda: int) -> CudaWheel:
    """The newest torch CUDA build this driver runs (``nvmlSystemGetCudaDriverVersion``).

    Within the driver's CUDA major: the newest build not above its version, else the
    oldest of that major (minor-version compatibility). A driver newer than every build
    takes the newest. ``PreflightError`` when no build has the driver's major or an older one.
    """
    builds = [CudaWheel(n, v) for n, v in TORCH_CUDA_VARIANTS]
    major = driver_cuda // 1000
    same = [b for b in builds if b.major == major]
    if same:
        fitting = [b for b in same if b.version <= driver_cuda]
        return fitting[-1] if fitting else same[0]
    older = [b for b in builds if b.major < major]
    if older:
        return older[-1]
    raise PreflightError(
        f"the NVIDIA driver supports CUDA {cuda_text(driver_cuda)}; torch's oldest CUDA build "
        f"here is {builds[0].name} (CUDA {cuda_text(builds[0].version)})",
        fix="update the NVIDIA driver (CUDA 12 drivers are 525 or newer), or build the CPU "
        "image: llem-nb images build <backend> --cpu",
    )


def image_major(driver_cuda: int) -> int:
    """The CUDA major of the image ``images build`` makes for this driver (its tag)."""
    return wheel_for_driver(driver_cuda).major


def check_wheel_against_driver(wheel_cuda: str | None, driver_cuda: int | None) -> None:
    """``PreflightError`` when the wheelhouse's torch needs a newer CUDA major than the
    driver supports: the image would build and then fail on every GPU call."""
    if wheel_cuda is None or driver_cuda is None:
        return
    major = int(wheel_cuda.split(".")[0])
    if major <= driver_cuda // 1000:
        return
    fit = wheel_for_driver(driver_cuda)
    raise PreflightError(
        f"the image's torch is built for CUDA {wheel_cuda}, but this host's NVIDIA driver "
        f"supports CUDA {cuda_text(driver_cuda)}: the image could not use the GPU",
        fix=f"use torch's {fit.name} build: --pip-arg=--extra-index-url={fit.index_url} "
        f"(for vLLM, a vLLM wheel built for CUDA {fit.major}), or update the driver",
    )
