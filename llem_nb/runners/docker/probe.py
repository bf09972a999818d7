"""Is Docker usable here, and the rule that isolates multi-backend studies in containers.

Usable = the daemon answers a ping (not merely a ``docker`` binary on PATH) and,
for GPU runs, the NVIDIA Container Toolkit is present (the daemon's ``nvidia``
runtime, or ``nvidia-container-runtime``/``nvidia-ctk``/``nvidia-container-cli``).
A probe is cached per process and per ``DOCKER_HOST``, with a short timeout, so
runner resolution stays cheap.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llem_nb.errors import LlemWarning, PreflightError
from llem_nb.runners.base import RunnerSpec
from llem_nb.runners.docker.classify import classify_connection
from llem_nb.runners.docker.errors import DOCKER_INSTALL_URL, TOOLKIT_URL, DockerError
from llem_nb.runners.docker.images import build_command, image_choice, image_present

DEFAULT_HOST = "unix:///var/run/docker.sock"
PROBE_TIMEOUT_S = 3.0
TOOLKIT_TOOLS = ("nvidia-container-runtime", "nvidia-ctk", "nvidia-container-cli")
EXPLICIT_SOURCES = frozenset({"argument", "env", "study", "user-config"})
SDK_FIX = "pip install 'llem_nb[docker]'"


@dataclass(frozen=True)
class DockerProbe:
    """What one look at the Docker daemon found."""

    host: str
    sdk: bool
    reachable: bool
    reason: str
    server_version: str | None = None
    nvidia: bool = False
    nvidia_how: str = ""
    rootless: bool = False

    @property
    def usable(self) -> bool:
        return self.sdk and self.reachable

    @property
    def gpu_usable(self) -> bool:
        return self.usable and self.nvidia


_PROBES: dict[str, DockerProbe] = {}


def docker_host(base_url: str | None = None) -> str:
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect(base_url: str | None = None, *, timeout: float = 60.0) -> Any:
    """A ``docker.DockerClient`` that has answered the daemon's version call, or a DockerError."""
    import docker
    from docker.errors import DockerException

    host = docker_host(base_url)
    try:
        if base_url is None:
            return docker.from_env(timeout=int(timeout) or 1)
        return docker.DockerClient(base_url=base_url, timeout=int(timeout) or 1)
    except (DockerException, OSError) as exc:
        raise classify_connection(exc, host=host) from exc


def nvidia_toolkit(runtimes: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether containers can get NVIDIA GPUs here, and how that was seen."""
    if "nvidia" in runtimes:
        return True, "the Docker daemon has the nvidia runtime"
    for tool in TOOLKIT_TOOLS:
        path = shutil.which(tool)
        if path:
            return True, f"{tool} at {path}"
    return False, (
        "no NVIDIA Container Toolkit: the daemon has no nvidia runtime and none of "
        f"{', '.join(TOOLKIT_TOOLS)} is on PATH ({TOOLKIT_URL})"
    )


def probe(base_url: str | None = None, *, refresh: bool = False) -> DockerProbe:
    """Look at the daemon once per process and host: reachable, version, NVIDIA toolkit."""
    host = docker_host(base_url)
    if not refresh and host in _PROBES:
        return _PROBES[host]
    if importlib.util.find_spec("docker") is None:
        why = f"the docker Python SDK is not installed ({SDK_FIX})"
        found = DockerProbe(host, False, False, why)
    else:
        found = _probe_daemon(base_url, host)
    _PROBES[host] = found
    return found


def _probe_daemon(base_url: str | None, host: str) -> DockerProbe:
    try:
        client = connect(base_url, timeout=PROBE_TIMEOUT_S)
    except DockerError as exc:
        return DockerProbe(host, True, False, exc.message)
    try:
        info = client.info()
        version = str(client.version().get("Version", "?"))
    except Exception as exc:  # a daemon that answers the ping but not info: report, don't raise
        why = f"the Docker daemon at {host} failed to answer: {exc}"
        return DockerProbe(host, True, False, why)
    finally:
        client.close()
    ok, how = nvidia_toolkit(info.get("Runtimes") or {})
    rootless = any("rootless" in str(opt) for opt in info.get("SecurityOptions") or [])
    reason = f"Docker {version} at {host}"
    return DockerProbe(host, True, True, reason, version, ok, how, rootless)


def docker_status() -> tuple[bool, str]:
    """(daemon reachable, why) — what the runner picker and ``llem-nb env`` show."""
    found = probe()
    return found.usable, found.reason


def nvidia_toolkit_status() -> tuple[bool, str]:
    found = probe()
    if not found.usable:
        return False, f"not checked: {found.reason}"
    return found.nvidia, found.nvidia_how


ELEVATION_LOGGER = "llem_nb.runners"


def isolate_backends(
    specs: Mapping[str, RunnerSpec],
    *,
    gpus: Mapping[str, Iterable[Any]] | None = None,
    found: DockerProbe | None = None,
    missing_images: Callable[[list[str]], list[str]] | None = None,
) -> dict[str, RunnerSpec]:
    """Several backends in one study: put each not explicitly placed in Docker, or stop.

    A backend whose runner came from the argument, env, study or user config is
    honoured. The others go to Docker when a daemon answers (logged once, at INFO); the
    NVIDIA Container Toolkit is needed only when one of their experiments asks for GPUs
    (``gpus``: each backend's ``gpus`` settings, default ``"all"``), and every image they
    will use (``image_choice``: ``-cpu`` for ``gpus=0`` on a host without a driver) must be
    here. Otherwise a ``PreflightError`` names what is missing and how to get it, before
    anything runs. Mixed runners: a warning naming them. ``found`` and
    ``missing_images`` replace the real checks in tests.
    """
    out = dict(specs)
    implicit = sorted(b for b, s in specs.items() if s.source not in EXPLICIT_SOURCES)
    if len(specs) > 1 and implicit:
        found = found or probe()
        settings = {b: list((gpus or {}).get(b, ["all"])) for b in implicit}
        wants_gpu = [b for b in implicit if any(g != 0 for g in settings[b])]
        images = {b: sorted({image_choice(b, g)[0] for g in settings[b]}) for b in implicit}
        missing: list[str] = []
        if found.usable and (found.nvidia or not wants_gpu):
            missing = (missing_images or _missing_images)([i for b in implicit for i in images[b]])
        if not found.usable or (wants_gpu and not found.nvidia) or missing:
            builds = sorted(
                {build_command(i, b) for b in implicit for i in images[b] if i in missing}
            )
            message, fix = _isolation_message(
                sorted(specs), implicit, wants_gpu, found, missing, builds
            )
            raise PreflightError(message, fix=fix)
        _log_elevation(sorted(specs), implicit)
        for backend in implicit:
            reason = "; ".join(
                image_choice(backend, g)[1] for g in dict.fromkeys(settings[backend])
            )
            out[backend] = RunnerSpec("docker", "auto", reason=f"multi-backend isolation; {reason}")
    if len({s.mode for s in out.values()}) > 1:
        named = ", ".join(f"{b}={s.value}" for b, s in sorted(out.items()))
        warnings.warn(
            f"mixed runners in one study ({named}): their numbers include different "
            "process and container overheads",
            LlemWarning,
            stacklevel=4,
        )
    return out


def _log_elevation(backends: list[str], implicit: list[str]) -> None:
    log = logging.getLogger(ELEVATION_LOGGER)
    if implicit == backends:
        log.warning(
            "Multi-backend study detected (%s). Auto-elevating all backends to Docker for "
            "isolation.",
            ", ".join(backends),
        )
    else:
        log.warning(
            "Multi-backend study detected (%s). Auto-elevating %s to Docker for isolation; "
            "the others keep the runner chosen for them.",
            ", ".join(backends),
            ", ".join(implicit),
        )


def _missing_images(images: list[str]) -> list[str]:
    client = connect(timeout=PROBE_TIMEOUT_S)
    try:
        return [i for i in dict.fromkeys(images) if not image_present(client, i)]
    finally:
        client.close()


def _isolation_message(
    backends: list[str],
    implicit: list[str],
    wants_gpu: list[str],
    found: DockerProbe,
    missing: list[str],
    builds: list[str],
) -> tuple[str, str]:
    if not found.usable:
        why = found.reason
        todo = f"install Docker ({DOCKER_INSTALL_URL})" + (
            " and the NVIDIA Container Toolkit" if wants_gpu else ""
        )
    elif wants_gpu and not found.nvidia:
        why = f"experiments of {', '.join(wants_gpu)} ask for GPUs, and {found.nvidia_how}"
        todo = f"install the NVIDIA Container Toolkit ({TOOLKIT_URL}), or set gpus=0"
    else:
        why = "these images are not on this machine: " + ", ".join(missing)
        todo = "build them: " + "; ".join(builds)
    example = ", ".join(f"{b}='subprocess'" for b in implicit)
    message = (
        f"this study runs several backends ({', '.join(backends)}), which must not share a "
        f"process; each goes to its own container, but Docker cannot run them here: {why}"
    )
    fix = (
        f"{todo}; or choose a runner for each backend yourself, e.g. "
        f"study = study.runners({example}), or LLEM_RUNNER_<BACKEND>=subprocess"
    )
    return message, fix
