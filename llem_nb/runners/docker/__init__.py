"""Docker: one fresh container per experiment, its images, its errors.

The runner, the daemon probe, the error taxonomy and its classifier, container
creation, the image registry and builds, and ``llem-nb images``.
"""

from llem_nb.runners.docker.errors import (
    DockerContainerError,
    DockerGPUAccessError,
    DockerImagePullError,
    DockerOOMError,
    DockerPermissionError,
    DockerTimeoutError,
)

__all__ = [
    "DockerContainerError",
    "DockerGPUAccessError",
    "DockerImagePullError",
    "DockerOOMError",
    "DockerPermissionError",
    "DockerTimeoutError",
]
