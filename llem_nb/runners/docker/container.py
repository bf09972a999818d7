"""What a container is given besides its config: GPUs, local inputs, caches.

Local inputs: a ``model`` or ``dataset`` that is a path on this machine is mounted
read-only at the same path (for relative paths the container's working dir is this
process's), so the config — and its hash — is the same inside the container and out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llem_nb.backends._gpu_place import nvml_uuids
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.device import NvmlLike
from llem_nb.runners.docker import images
from llem_nb.runners.docker.classify import Failure, classify
from llem_nb.runners.docker.errors import DockerError
from llem_nb.runners.docker.probe import probe
from llem_nb.runners.exchange import Exchange

HF_CACHE_MOUNT = "/run/hf-cache/hub"
Mounts = dict[str, dict[str, str]]


def input_mounts(config: ExperimentConfig) -> tuple[Mounts, str | None]:
    """Read-only mounts for a local model dir or dataset file, and the working dir they need."""
    mounts: Mounts = {}
    working_dir = None
    for raw in (config.model, config.dataset):
        path = Path(raw).expanduser()
        if path.exists():
            mounts[str(path.resolve())] = {"bind": str(path.resolve()), "mode": "ro"}
            if not Path(raw).is_absolute():
                working_dir = os.getcwd()
    return mounts, working_dir


def gpu_requests(gpus: Any, uuids: Sequence[str] = ()) -> tuple[list[Any], dict[str, str]]:
    """Docker device requests and environment for the config's ``gpus`` setting.

    ``n`` with the host's GPU ``uuids`` known (NVML, PCI order): those first n GPUs by UUID,
    the ``nvidia`` DeviceRequest's ``device_ids`` — the runtime exposes exactly them (as
    ``NVIDIA_VISIBLE_DEVICES``) and numbers them 0..n-1 inside. Without NVML here: a count.
    A list keeps host numbering: every GPU, narrowed by ``CUDA_VISIBLE_DEVICES``.
    """
    if gpus == 0:
        return [], {}
    from docker.types import DeviceRequest

    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    if isinstance(gpus, int) and not isinstance(gpus, bool):
        if len(uuids) >= gpus:
            return [DeviceRequest(device_ids=list(uuids[:gpus]), capabilities=[["gpu"]])], env
        return [DeviceRequest(count=gpus, capabilities=[["gpu"]])], env
    if isinstance(gpus, list):
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g).strip() for g in gpus)
    return [DeviceRequest(count=-1, capabilities=[["gpu"]])], env


def host_gpu_uuids(nvml: NvmlLike = None) -> list[str]:
    """This machine's GPU UUIDs in NVML (PCI) order; [] without NVML (``nvml``: a stand-in)."""
    return nvml_uuids(nvml)


def hf_hub_cache() -> Path:
    """This machine's Hugging Face hub cache (``HF_HUB_CACHE`` > ``HF_HOME``/hub > default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


CONTAINER_USER = "llem"
USER_ENV: dict[str, str] = {
    "HOME": "/tmp",
    "USER": CONTAINER_USER,
    "LOGNAME": CONTAINER_USER,
    "XDG_CACHE_HOME": "/tmp/.cache",
    "TRITON_CACHE_DIR": "/tmp/.cache/triton",
    "TORCHINDUCTOR_CACHE_DIR": "/tmp/.cache/torchinductor",
    "VLLM_CACHE_ROOT": "/tmp/.cache/vllm",
}
"""The container runs as the host's uid:gid, which has no passwd entry in the image:
``getpass.getuser()`` (Inductor's cache dir, Triton) reads ``LOGNAME``/``USER`` first, and
the caches go to a writable place instead of an unnamed user's home."""


def hf_cache_mount() -> tuple[Mounts, dict[str, str]]:
    """The hub cache mounted read-only, and the env that points Hugging Face at it."""
    hub = hf_hub_cache()
    if not hub.is_dir():
        return {}, {}
    return {str(hub): {"bind": HF_CACHE_MOUNT, "mode": "ro"}}, {"HF_HUB_CACHE": HF_CACHE_MOUNT}


@dataclass
class Prepared:
    """An experiment's exchange dir and created (not started) container."""

    exchange: Exchange
    failure: Failure
    attrs: dict[str, Any]
    container: Any


def save_logs(container: Any, exchange: Exchange) -> str:
    """The container's stdout+stderr, also saved as ``output.log`` in the exchange dir."""
    try:
        text = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    except Exception:  # a vanished container has no logs; the error file may still say why
        return ""
    with contextlib.suppress(OSError):
        exchange.log_path.write_text(text)
    return text


def remove_container(container: Any) -> None:
    """Kill (if running) and remove; a container that is already gone is fine."""
    from docker.errors import DockerException

    with contextlib.suppress(DockerException):
        container.remove(force=True)


def ensure_image(
    client: Any, image: str, pull: str, cache: dict[str, dict[str, Any]], failure: Failure
) -> dict[str, Any]:
    """The image's attributes (remembered in ``cache``); pulled per the ``pull`` policy,
    else a classified ``ImagePullError``."""
    from docker.errors import DockerException, ImageNotFound

    if image in cache:
        return cache[image]
    try:
        if pull == "always":
            found = client.images.pull(image)
        else:
            try:
                found = client.images.get(image)
            except ImageNotFound:
                if pull == "never":
                    raise
                found = client.images.pull(image)
    except DockerException as exc:
        raise classify(replace(failure, phase="pull", exc=exc)) from exc
    cache[image] = found.attrs
    return dict(found.attrs)


def container_user(user: str | None, base_url: str | None) -> str | None:
    """``user`` if set (``""``: the image's own); else this process's uid:gid, so the
    exchange dir stays private — except under rootless Docker, where root is the caller."""
    if user is not None:
        return user or None
    if probe(base_url).rootless:
        return None
    return f"{os.getuid()}:{os.getgid()}"


def present_for_driver(client: Callable[[], Any], backend: str, major: int) -> str | None:
    """The newest default CUDA image here that this driver runs (none: docker cannot
    tell, and the default name stands)."""
    from docker.errors import DockerException

    try:
        found = client()
        return images.present_for_driver(
            backend, major, lambda name: images.image_present(found, name)
        )
    except (DockerError, DockerException):
        return None


def image_digest(attrs: dict[str, Any]) -> str | None:
    """What a result records as ``image_digest``: the repo digest, else the image id."""
    return (attrs.get("RepoDigests") or [None])[0] or attrs.get("Id")
