"""``docker_status()``: what Docker offers on this machine, as one plain object.

For notebooks and ``llem-nb env``: is the SDK installed, does a daemon answer, can it
hand out NVIDIA GPUs, which CUDA the image tags follow here, and which backend
images are built (with the command that builds a missing one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llem_nb.runners.docker.images import cuda_reason, list_images


@dataclass(frozen=True)
class ImageStatus:
    """One default image: present here or not, and how to build it."""

    backend: str
    image: str
    present: bool
    build: str
    cpu: bool
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DockerStatus:
    """What one look at Docker found (``llem_nb.runners.docker.docker_status()``)."""

    host: str
    sdk: bool
    daemon: bool
    reason: str
    nvidia: bool
    nvidia_how: str
    cuda: str
    images: tuple[ImageStatus, ...] = ()
    sdk_fix: str = ""

    @property
    def usable(self) -> bool:
        """A daemon answers: containers can run (on the CPU at least)."""
        return self.sdk and self.daemon

    @property
    def gpu_usable(self) -> bool:
        """Containers can get NVIDIA GPUs here."""
        return self.usable and self.nvidia

    def image(self, backend: str, *, cpu: bool) -> ImageStatus | None:
        """The backend's CPU (``cpu=True``) or CUDA default image, if this host names one."""
        return next((i for i in self.images if i.backend == backend and i.cpu == cpu), None)

    def __str__(self) -> str:
        lines = [
            f"Docker daemon : {'yes' if self.usable else 'no'} ({self.reason})",
            f"NVIDIA toolkit: {'yes' if self.nvidia else 'no'} ({self.nvidia_how or '-'})",
            f"image tags    : {self.cuda}",
        ]
        for img in self.images:
            state = "present" if img.present else f"missing ({img.build})"
            lines.append(f"image {img.backend:<8}: {img.image} {state}")
        return "\n".join(lines)


def docker_status(base_url: str | None = None, *, refresh: bool = False) -> DockerStatus:
    """Look at Docker here (cached per process; ``refresh=True`` looks again)."""
    from llem_nb.runners.docker.probe import SDK_FIX, connect, probe  # noqa: PLC0415 - keeps status light (pydantic)

    found = probe(base_url, refresh=refresh)
    status = DockerStatus(
        host=found.host,
        sdk=found.sdk,
        daemon=found.reachable,
        reason=found.reason,
        nvidia=found.nvidia,
        nvidia_how=found.nvidia_how if found.reachable else f"not checked: {found.reason}",
        cuda=cuda_reason(),
        sdk_fix="" if found.sdk else SDK_FIX,
    )
    if not found.usable:
        return status
    client = connect(base_url, timeout=5.0)
    try:
        rows = list_images(client)
    finally:
        client.close()
    images = tuple(
        ImageStatus(
            backend=row["backend"],
            image=row["image"],
            present=row["present"],
            build=row["build"],
            cpu=row["image"].endswith("-cpu"),
            labels=row.get("labels", {}),
        )
        for row in rows
    )
    return DockerStatus(**{**status.__dict__, "images": images})
