"""``ll.images``: get the Docker runner's images — ``ensure(study)`` pulls or builds what a
study needs; ``pull(backend)`` one backend's image (from ``$LLEM_IMAGE_REGISTRY``, else built)."""

from __future__ import annotations

from typing import Any

from llem_nb.runners.docker.ensure import ensure, needed_images

__all__ = ["ensure", "needed_images", "pull"]


def pull(backend: str, *, cpu: bool | None = None, build: bool = True) -> str:
    """``llem-nb images pull BACKEND [--cpu]`` from Python; the image's tag."""
    from llem_nb.runners.docker.probe import connect
    from llem_nb.runners.docker.pull import pull_image

    client: Any = connect(timeout=600)
    try:
        return pull_image(backend, client=client, cpu=cpu, build=build)
    finally:
        client.close()
