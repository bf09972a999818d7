"""Images users pull instead of build: ``llem-nb images pull <backend> [--cpu]``.

The runner's default images are named ``ghcr.io/llem-nb/{backend}:{version}-{cuda|cpu}``.
``pull_image`` fetches that tag from ``$LLEM_IMAGE_REGISTRY`` (default ``ghcr.io/llem-nb``:
a mirror or a registry of one's own serves the same repository names), tags it with the
default name so the runner finds it, and — when the registry does not have it or cannot be
reached — builds it here instead (``build_image``), saying so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from llem_nb._version import __version__
from llem_nb.runners.docker.build import build_image
from llem_nb.runners.docker.errors import ImagePullError
from llem_nb.runners.docker.images import REGISTRY, cuda_major, default_image

REGISTRY_ENV = "LLEM_IMAGE_REGISTRY"
PROGRESS_STATES = ("Downloading", "Extracting", "Waiting")
"""Per-layer byte counts: shown once per layer and state, not on every update."""


def registry() -> str:
    """Where images are pulled from: ``$LLEM_IMAGE_REGISTRY`` or ``ghcr.io/llem-nb``."""
    return (os.environ.get(REGISTRY_ENV) or REGISTRY).rstrip("/")


def source_for(image: str) -> str:
    """The registry reference a default image name is pulled from."""
    return registry() + image[len(REGISTRY) :] if image.startswith(f"{REGISTRY}/") else image


def pull_image(
    backend: str,
    *,
    client: Any,
    cpu: bool | None = None,
    version: str = __version__,
    build: bool = True,
    base_image: str | None = None,
    on_line: Callable[[str], None] = print,
) -> str:
    """Pull the backend's default image (``cpu``: the CPU variant; default when this machine
    has no CUDA); on failure build it (``build``; from ``base_image`` as ``build_image``
    takes it) or raise ``ImagePullError``. The tag."""
    cpu = cuda_major() is None if cpu is None else cpu
    target = default_image(backend, version=version, cuda=None if cpu else cuda_major())
    source = source_for(target)
    try:
        _stream_pull(client, source, on_line)
    except Exception as exc:  # any failure to pull (absent, unreachable, refused) → build
        why = _short(exc)
        if not build:
            raise ImagePullError(
                f"{source} could not be pulled: {why}",
                fix=f"build it here: llem-nb images build {backend}{' --cpu' if cpu else ''}, "
                f"or set {REGISTRY_ENV} to a registry that has it",
                image=source,
            ) from exc
        on_line(f"{source} could not be pulled ({why}); building {target} here instead")
        built = build_image(backend, client=client, cpu=cpu, base_image=base_image, on_line=on_line)
        return built.tag
    if source != target:
        client.images.get(source).tag(target)
        client.images.remove(source, noprune=True)
    on_line(f"pulled {source} as {target}")
    return target


def _stream_pull(client: Any, source: str, on_line: Callable[[str], None]) -> None:
    """Pull with one line per layer and state; an ``error`` in the stream raises."""
    from docker.errors import APIError

    repository, _, tag = source.rpartition(":")
    seen: set[tuple[str, str]] = set()
    for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
        if "error" in event:
            raise APIError(str(event["error"]))
        status, layer = str(event.get("status", "")), str(event.get("id", ""))
        if (layer, status) in seen:
            continue
        seen.add((layer, status))
        if status.startswith(PROGRESS_STATES):
            total = (event.get("progressDetail") or {}).get("total")
            size = f" ({total / 1e6:.0f} MB)" if total else ""
            on_line(f"{layer}: {status.lower()}{size}")
        elif status:
            on_line(f"{layer}: {status}" if layer else status)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
