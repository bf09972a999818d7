"""``ensure(study)``: make every image a study's Docker experiments need present, first.

``ll.images`` gathers it with ``pull`` and ``needed``: ``ll.images.ensure(study)``.

A study that runs (some of) its backends in Docker — chosen, or elevated because it has
several backends — stops at preflight when an image is missing. ``ensure`` resolves the
runners the same way, finds the images that are not here, and gets each: llem_nb's own
(default-named) images are pulled from ``$LLEM_IMAGE_REGISTRY`` or built here
(``pull_image``), with a progress line per step; any other image is pulled by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llem_nb.runners.docker.images import image_choice, image_present, is_default_name
from llem_nb.runners.docker.probe import EXPLICIT_SOURCES, connect, probe
from llem_nb.runners.docker.pull import pull_image
from llem_nb.runners.resolve import resolve_runner

Study = Any
"""A ``llem_nb.Study`` (a higher layer: only its ``points`` and ``config.runners`` are read)."""


def needed_images(study: Study, runner: Any = None) -> dict[str, tuple[str, bool]]:
    """Image → (backend, cpu) for every experiment of ``study`` that runs in Docker."""
    points = study.points
    backends = sorted({p.config.backend for p in points})
    value = runner if isinstance(runner, (str, dict)) or runner is None else None
    specs = {
        b: resolve_runner(b, argument=value, study_runners=study.config.runners) for b in backends
    }
    elevated = len(backends) > 1
    needed: dict[str, tuple[str, bool]] = {}
    for point in points:
        backend, gpus = point.config.backend, point.config.gpus
        spec = specs[backend]
        docker = spec.mode == "docker" or (elevated and spec.source not in EXPLICIT_SOURCES)
        if not docker:
            continue
        image = spec.image or image_choice(backend, gpus)[0]
        needed.setdefault(image, (backend, image.endswith("-cpu")))
    return needed


def ensure(
    study: Study,
    *,
    runner: Any = None,
    base_url: str | None = None,
    on_line: Callable[[str], None] = print,
) -> list[str]:
    """Pull or build every image ``study`` needs that is missing here; the images it got
    (empty: nothing was missing). ``runner``: as for ``study.run``."""
    needed = needed_images(study, runner)
    if not needed:
        on_line("no experiment of this study runs in Docker: no image needed")
        return []
    client = connect(base_url, timeout=600)
    got: list[str] = []
    try:
        for image, (backend, cpu) in needed.items():
            if image_present(client, image):
                on_line(f"{image} is here")
                continue
            if is_default_name(image):
                got.append(pull_image(backend, client=client, cpu=cpu, on_line=on_line))
            else:
                on_line(f"pulling {image}")
                client.images.pull(image)
                got.append(image)
    finally:
        client.close()
    probe(refresh=True)
    return got


class Images:
    """``ll.images``: get the Docker runner's images from a notebook or script."""

    @staticmethod
    def ensure(study: Study, **options: Any) -> list[str]:
        """Pull or build every image ``study`` needs that is missing (``ensure``)."""
        return ensure(study, **options)

    @staticmethod
    def needed(study: Study, runner: Any = None) -> dict[str, tuple[str, bool]]:
        """Image → (backend, cpu) for the study's Docker experiments (``needed_images``)."""
        return needed_images(study, runner)

    @staticmethod
    def pull(backend: str, *, cpu: bool | None = None, build: bool = True) -> str:
        """``llem-nb images pull BACKEND [--cpu]``: from ``$LLEM_IMAGE_REGISTRY``, else built."""
        client = connect(timeout=600)
        try:
            return pull_image(backend, client=client, cpu=cpu, build=build)
        finally:
            client.close()

    def __repr__(self) -> str:
        return "ll.images: ensure(study), needed(study), pull(backend, cpu=None)"


images = Images()
