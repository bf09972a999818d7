"""Docker: one fresh container per experiment, its images, its errors.

The runner, the daemon probe, the error taxonomy and its classifier, container
creation, the image registry and builds, and ``llem-nb images``.
"""

from typing import Any

from llem_nb.runners.docker.errors import (
    DockerContainerError,
    DockerGPUAccessError,
    DockerImagePullError,
    DockerOOMError,
    DockerPermissionError,
    DockerTimeoutError,
)


def ensure(study: Any, **options: Any) -> list[str]:
    """Pull or build every image ``study`` needs that is missing (``ensure.ensure``)."""
    from llem_nb.runners.docker.ensure_images import ensure as _ensure

    return _ensure(study, **options)


__all__ = [
    "DockerContainerError",
    "DockerGPUAccessError",
    "DockerImagePullError",
    "DockerOOMError",
    "DockerPermissionError",
    "DockerTimeoutError",
    "ensure",
]
