"""What the runner picker shows, as plain functions: what this machine offers each runner,
each backend's runner as resolution would pick it, and a picker row's runner value.

No ipywidgets here: ``llem-nb env``, tests and other views can use these on their own.
"""

from __future__ import annotations

import html
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from llem_nb.config.plugins import known_runners
from llem_nb.energy.device import NvmlLike
from llem_nb.energy.factory import nvml_available
from llem_nb.errors import ConfigError, LlemError
from llem_nb.runners.docker import probe
from llem_nb.runners.docker.images import docker_reason, parse_image
from llem_nb.runners.resolve import RunnerSpec, check_runner_value, resolve_runner

IMAGE_MODE = "docker:<image>"
MODES = ("local", "subprocess", "docker", IMAGE_MODE, "ray")
NOT_CHECKED = "not checked (llem_nb[docker] not installed)"


@dataclass(frozen=True)
class Capability:
    """One thing a runner needs: whether this machine has it (None: not checked) and why."""

    name: str
    usable: bool | None
    detail: str

    @property
    def symbol(self) -> str:
        return {True: "✓", False: "✗", None: "?"}[self.usable]


def check_image(image: str) -> str:
    """The image reference, stripped, or a ``ConfigError`` saying what is wrong with it."""
    return str(parse_image(image, field="docker:<image>"))


def runner_value(mode: str, image: str = "") -> str:
    """A picker row's runner value (``docker:<image>`` filled in), validated."""
    if mode == IMAGE_MODE:
        return check_runner_value(f"docker:{check_image(image)}", "runner")
    return check_runner_value(mode, "runner")


def _docker_capabilities() -> list[Capability]:
    """Docker daemon and NVIDIA toolkit, from the Docker probe when the SDK is installed."""
    toolkit = "NVIDIA container toolkit"
    if importlib.util.find_spec("docker") is None:
        return [
            Capability("docker daemon", None, NOT_CHECKED),
            Capability(toolkit, None, NOT_CHECKED),
        ]
    try:
        daemon_ok, daemon_why = probe.docker_status()
        if not daemon_ok:
            return [
                Capability("docker daemon", False, daemon_why),
                Capability(toolkit, None, "not checked (no Docker daemon)"),
            ]
        nvidia_ok, nvidia_why = probe.nvidia_toolkit_status()
    except Exception as exc:  # a probe must never break the picker
        return [Capability("docker daemon", False, f"check failed: {exc}")]
    return [
        Capability("docker daemon", True, daemon_why),
        Capability(toolkit, nvidia_ok, nvidia_why),
    ]


def probe_capabilities(nvml: NvmlLike = None) -> list[Capability]:
    """What runners can use here: Docker daemon, NVIDIA toolkit, GPUs (NVML), Ray."""
    gpu_ok, gpu_why = nvml_available(nvml)
    ray = importlib.util.find_spec("ray") is not None
    return [
        *_docker_capabilities(),
        Capability("GPUs (NVML)", gpu_ok, gpu_why),
        Capability(
            "ray", ray, "installed" if ray else "not installed (pip install 'llem_nb[ray]')"
        ),
    ]


def mode_status(mode: str, capabilities: Iterable[Capability]) -> Capability:
    """Whether ``mode`` can run here, judged from ``capabilities`` and the runner registry."""
    runner = mode.partition(":")[0]
    caps = {c.name: c for c in capabilities}
    if runner not in known_runners():
        return Capability(runner, False, f"runner {runner!r} is not installed in this llem_nb")
    if runner == "docker":
        return caps.get("docker daemon", Capability("docker", None, NOT_CHECKED))
    if runner == "ray":
        return caps.get("ray", Capability("ray", None, "not checked"))
    return Capability(runner, True, "runs on this machine")


def default_runners(
    backends: Iterable[str], study_runners: Mapping[str, str] | None = None
) -> dict[str, RunnerSpec | ConfigError]:
    """Each backend's runner as resolution would pick it now, or the error resolution raised."""
    out: dict[str, RunnerSpec | ConfigError] = {}
    for backend in backends:
        try:
            out[backend] = resolve_runner(backend, study_runners=study_runners)
        except ConfigError as exc:
            out[backend] = exc
    return out


def image_for(backend: str) -> str | None:
    """Which image the Docker runner would use for ``backend`` here, and why: the GPU image,
    and the CPU one ``gpus=0`` experiments take where they differ (None when it cannot tell)."""
    try:
        return docker_reason(backend)
    except LlemError:
        return None


def capabilities_html(capabilities: Iterable[Capability]) -> str:
    """What this machine offers runners, one line each."""
    colour = {True: "#1b6e20", False: "#b00020", None: "#8a6d00"}
    rows = "".join(
        f"<tr><td style='color:{colour[c.usable]};padding-right:6px'>{c.symbol}</td>"
        f"<td style='padding-right:10px'><b>{html.escape(c.name)}</b></td>"
        f"<td>{html.escape(c.detail)}</td></tr>"
        for c in capabilities
    )
    return f"<table style='font-size:12px;color:#444;margin-bottom:4px'>{rows}</table>"
