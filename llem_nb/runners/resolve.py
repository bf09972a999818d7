"""Which runner an experiment's backend uses, and which layer chose it.

Per backend, first hit wins: an explicit ``run(runner=...)`` argument > env
``LLEM_RUNNER_<BACKEND>`` > the study's ``runners:`` > the user config file
(``platformdirs`` config dir, ``llem_nb/config.yaml``) > auto-detect > the backend's
``default_runner`` (``local`` for PyTorch).

Auto-detect picks ``docker`` when the daemon answers, the NVIDIA Container Toolkit
is present and the backend's default image is on this machine; with Docker usable
but the image missing it warns once how to build it and falls through.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs
import yaml

from llem_nb.backends.base import get_backend
from llem_nb.config.plugins import RUNNERS
from llem_nb.errors import ConfigError, LlemWarning
from llem_nb.runners.base import RunnerSpec
from llem_nb.runners.docker.errors import DockerError
from llem_nb.runners.docker.images import default_image, docker_reason, image_present, parse_image
from llem_nb.runners.docker.probe import connect, probe

SOURCES = ("argument", "env", "study", "user-config", "auto", "default")

log = logging.getLogger(__name__)


def check_runner_value(value: str, where: str) -> str:
    """A runner value is ``name`` or ``name:<argument>`` for a registered runner name."""
    value = value.strip()
    mode, _, arg = value.partition(":")
    if mode not in RUNNERS or (":" in value and not arg):
        forms = ", ".join(f"{n}[:…]" if n != "local" else n for n in RUNNERS.names())
        raise ConfigError(
            f"{where}: runner {value!r} is not a known runner value ({forms}; e.g. "
            "docker:<image>, ray:<address>, subprocess:<python>)",
            field=where,
        )
    if mode == "docker" and arg:
        parse_image(arg, field=where)
    return value


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir("llem_nb")) / "config.yaml"


def read_user_runners(path: Path | None = None) -> dict[str, str]:
    path = path or user_config_path()
    if not path.is_file():
        return {}
    data: Any = yaml.safe_load(path.read_text()) or {}
    runners = data.get("runners", {}) if isinstance(data, Mapping) else {}
    if not isinstance(runners, Mapping):
        raise ConfigError(f"{path}: 'runners' must map backend names to runner values")
    return {str(k): check_runner_value(str(v), f"{path}: runners.{k}") for k, v in runners.items()}


AutoDetect = Callable[[str], str | None]
_NOTED: set[str] = set()


def docker_auto_detect(
    backend: str,
    *,
    found: Any = None,
    image_present: Callable[[str], bool] | None = None,
) -> str | None:
    """``docker`` when Docker + the NVIDIA toolkit are usable and the backend's image is here.

    ``found`` (a ``DockerProbe``) and ``image_present`` replace the real checks in tests.
    """
    if found is None:
        found = probe()
    if not found.gpu_usable:
        log.debug("auto-detect %s: Docker with GPUs not usable (%s)", backend, found.reason)
        return None
    image = default_image(backend)
    present = (image_present or _image_on_daemon)(image)
    log.debug("auto-detect %s: Docker usable, image %s present: %s", backend, image, present)
    if present:
        return "docker"
    if backend not in _NOTED:
        _NOTED.add(backend)
        warnings.warn(
            f"Docker is usable but {image} is not built, so {backend} runs locally; "
            f"build it with: llem-nb images build {backend}",
            LlemWarning,
            stacklevel=2,
        )
    return None


def _image_on_daemon(image: str) -> bool:
    try:
        client = connect(timeout=3.0)
    except DockerError:
        return False
    try:
        return image_present(client, image)
    finally:
        client.close()


def resolve_runner(
    backend: str,
    *,
    argument: str | Mapping[str, str] | None = None,
    study_runners: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    user_runners: Mapping[str, str] | None = None,
    auto_detect: AutoDetect | None = None,
) -> RunnerSpec:
    """Resolve one backend's runner through the layers; record (and log) the winning layer.

    ``auto_detect`` replaces the Docker detector (tests inject one; ``lambda b: None``
    turns the layer off). A ``docker`` result without an image says in ``reason`` which
    image it will run here (e.g. ``-cpu`` for ``gpus=0`` when only ``nvcc`` is present).
    """
    spec = _resolve(backend, argument, study_runners, environ, user_runners, auto_detect)
    log.info("runner for %s: %s (chosen by %s)", backend, spec.value, spec.source)
    if spec.mode == "docker" and spec.image is None:
        reason = docker_reason(backend)
        log.info("docker image for %s: %s", backend, reason)
        return RunnerSpec(spec.value, spec.source, reason=reason)
    return spec


def _resolve(
    backend: str,
    argument: str | Mapping[str, str] | None,
    study_runners: Mapping[str, str] | None,
    environ: Mapping[str, str] | None,
    user_runners: Mapping[str, str] | None,
    auto_detect: AutoDetect | None,
) -> RunnerSpec:
    env = os.environ if environ is None else environ
    if isinstance(argument, str):
        return RunnerSpec(check_runner_value(argument, "runner"), "argument")
    if isinstance(argument, Mapping) and backend in argument:
        return RunnerSpec(check_runner_value(argument[backend], f"runner[{backend}]"), "argument")
    env_key = f"LLEM_RUNNER_{backend.upper()}"
    if env.get(env_key):
        return RunnerSpec(check_runner_value(env[env_key], env_key), "env")
    if study_runners and backend in study_runners:
        return RunnerSpec(check_runner_value(study_runners[backend], f"runners.{backend}"), "study")
    users = read_user_runners() if user_runners is None else user_runners
    if backend in users:
        return RunnerSpec(users[backend], "user-config")
    detected = (auto_detect or docker_auto_detect)(backend)
    if detected:
        return RunnerSpec(check_runner_value(detected, "auto-detect"), "auto")

    return RunnerSpec(get_backend(backend).default_runner, "default")
