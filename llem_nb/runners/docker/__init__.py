"""Docker: one fresh container per experiment, its images, its errors.

The runner, the daemon probe, the error taxonomy and its classifier, container
creation, the image registry and builds. Its public names load on first use, so
importing one of its modules never pulls in the runner (or the Docker SDK)::

    from llem_nb.runners.docker import DockerRunner, DockerError, docker_status
"""

import importlib as _importlib
from typing import Any as _Any

_PUBLIC: dict[str, str] = {
    "DockerRunner": "llem_nb.runners.docker.runner",
    "DockerError": "llem_nb.runners.docker.errors",
    "ImagePullError": "llem_nb.runners.docker.errors",
    "GPUAccessError": "llem_nb.runners.docker.errors",
    "OOMError": "llem_nb.runners.docker.errors",
    "ContainerTimeoutError": "llem_nb.runners.docker.errors",
    "DockerPermissionError": "llem_nb.runners.docker.errors",
    "ContainerError": "llem_nb.runners.docker.errors",
    "docker_status": "llem_nb.runners.docker.status",
    "DockerStatus": "llem_nb.runners.docker.status",
    # LLenergyMeasure's names for the same errors, so code written against it catches ours.
    "DockerImagePullError": "llem_nb.runners.docker.errors",
    "DockerGPUAccessError": "llem_nb.runners.docker.errors",
    "DockerOOMError": "llem_nb.runners.docker.errors",
    "DockerTimeoutError": "llem_nb.runners.docker.errors",
    "DockerContainerError": "llem_nb.runners.docker.errors",
    "ensure": "llem_nb.runners.docker.ensure_images",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> _Any:
    path = _PUBLIC.get(name)
    if path is None:
        raise AttributeError(f"module 'llem_nb.runners.docker' has no attribute {name!r}")
    value = getattr(_importlib.import_module(path), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *globals()})
