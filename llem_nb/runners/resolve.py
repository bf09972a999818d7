"""Which runner an experiment's backend uses, and which layer chose it.

Per backend, first hit wins: an explicit ``run(runner=...)`` argument > env
``LLEM_RUNNER_<BACKEND>`` > the study's ``runners:`` > the user config file
(``platformdirs`` config dir, ``llem_nb/config.yaml``) > auto-detect > the backend's
``default_runner`` (``local`` for PyTorch).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llem_nb.errors import ConfigError

SOURCES = ("argument", "env", "study", "user-config", "auto", "default")
_VALUE = re.compile(r"^(local|subprocess|ray|ray\+docker|docker)(:.+)?$")


@dataclass(frozen=True)
class RunnerSpec:
    """A resolved runner: its string value, mode, optional image/address and where it came from."""

    value: str
    source: str

    @property
    def mode(self) -> str:
        return self.value.partition(":")[0]

    @property
    def arg(self) -> str | None:
        return self.value.partition(":")[2] or None


def check_runner_value(value: str, where: str) -> str:
    value = value.strip()
    if not _VALUE.match(value):
        raise ConfigError(
            f"{where}: runner {value!r} is not one of local, subprocess, docker, "
            "docker:<image>, ray, ray:<address>",
            field=where,
        )
    return value


def user_config_path() -> Path:
    import platformdirs

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


def resolve_runner(
    backend: str,
    *,
    argument: str | Mapping[str, str] | None = None,
    study_runners: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    user_runners: Mapping[str, str] | None = None,
    auto_detect: AutoDetect | None = None,
) -> RunnerSpec:
    """Resolve one backend's runner through the layers; record the winning layer."""
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
    if auto_detect is not None:
        detected = auto_detect(backend)
        if detected:
            return RunnerSpec(detected, "auto")
    from llem_nb.backends.base import get_backend

    return RunnerSpec(get_backend(backend).default_runner, "default")
