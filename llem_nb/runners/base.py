"""Runner base class and registry: where an experiment runs (kernel, child process, …).

A runner turns one ``ExperimentConfig`` into one ``ExperimentResult`` or raises.
The base class stamps runner metadata on the result; subclasses only execute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from llem_nb._registry import Registry
from llem_nb.config import ExperimentConfig
from llem_nb.errors import ConfigError
from llem_nb.results.schema import ExperimentResult


class Runner(ABC):
    """Base class: ``run`` = ``_execute`` + runner metadata."""

    name: ClassVar[str]

    def __init__(self, *, source: str | None = None) -> None:
        self.source = source

    def run(self, config: ExperimentConfig, *, cycle: int = 0, study: str = "") -> ExperimentResult:
        """Run one experiment; raise on failure (the study loop turns that into a failed row)."""
        result = self._execute(config, cycle=cycle, study=study)
        return result.model_copy(update=self.metadata())

    @classmethod
    def from_arg(cls, arg: str, *, source: str | None = None) -> Runner:
        """Build from the part after the colon in ``name:arg`` (an image, an address)."""
        raise ConfigError(
            f"runner {cls.name!r} takes no argument (got {cls.name}:{arg})", field="runner"
        )

    def metadata(self) -> dict[str, Any]:
        return {"runner": self.name, "runner_source": self.source}

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        """Release what the runner holds (a client, a cluster connection)."""

    def cancel(self) -> None:
        """Stop the experiment ``run`` is executing now; called from another thread.

        ``run`` should then raise soon. Runners that cannot cancel (in-process) keep
        this no-op, and the study stops after the current experiment instead.
        """

    @abstractmethod
    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult: ...


_RUNNERS = Registry(
    "runner",
    "runner",
    {
        "local": "llem_nb.runners.local:LocalRunner",
        "subprocess": "llem_nb.runners.local:SubprocessRunner",
        "docker": "llem_nb.runners.docker:DockerRunner",
        "ray": "llem_nb.runners.ray:RayRunner",
        "ray+docker": "llem_nb.runners.ray:RayDockerRunner",
    },
)


def register_runner(name: str, runner: str | type[Runner]) -> None:
    _RUNNERS.register(name, runner)


def known_runners() -> list[str]:
    return _RUNNERS.names()


def runner_class(name: str) -> type[Runner]:
    cls: type[Runner] = _RUNNERS.get(name)
    return cls


def make_runner(value: str, *, source: str | None = None) -> Runner:
    """Build a runner from its string form: ``local``, ``subprocess``, ``docker:<image>`` …"""
    name, _, arg = value.partition(":")
    cls = runner_class(name)
    if arg:
        return cls.from_arg(arg, source=source)
    return cls(source=source)
