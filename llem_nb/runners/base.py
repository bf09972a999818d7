"""Runner base class: where an experiment runs (kernel, child process, container, cluster).

A runner turns one ``ExperimentConfig`` into one ``ExperimentResult`` or raises. The
base class stamps runner metadata on the result and declares every hook the study loop
uses, with defaults, so a plugin runner is a subclass with ``_execute`` (~50 lines):
``preflight`` (checks before anything runs), ``prepare`` (the next experiment, announced
while the current one runs), ``checks_backend`` (whether ``preflight``
already ran the backend's own checks, e.g. in another interpreter), ``concurrent`` /
``submit`` / ``wait`` / ``result`` (runners that dispatch several experiments at once),
``cancel``, ``release``, ``close``. Runners are found by name through ``llem_nb.config.plugins``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import RUNNERS
from llem_nb.errors import ConfigError
from llem_nb.results.schema import ExperimentResult


class Runner(ABC):
    """Base class: ``run`` = ``_execute`` + runner metadata."""

    name: ClassVar[str]
    concurrent: ClassVar[bool] = False
    """True: the loop hands it every experiment through ``submit`` and collects ``result``."""
    reuse: str = "never"
    """``auto``: keep a loaded model between experiments whose load keys are equal (runners
    that can: local, subprocess); ``never``: every experiment loads its own. The study loop
    sets it from the study's ``reuse``."""

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

    @property
    def checks_backend(self) -> bool:
        """True when ``preflight`` runs the backend's own checks itself (the loop then
        does not run them in this process)."""
        return False

    def preflight(self, config: ExperimentConfig) -> None:
        """Checks before anything runs (is the engine there, the image, the cluster?);
        raise ``PreflightError`` or ``ConfigError`` with a fix."""

    def submit(self, config: ExperimentConfig, *, cycle: int, study: str) -> Any:
        """Start one experiment without waiting (``concurrent`` runners); a handle."""
        raise NotImplementedError(f"runner {self.name!r} runs one experiment at a time")

    def wait(self, handles: Iterable[Any], timeout_s: float | None = None) -> list[Any]:
        """The ``submit``-ted handles that have finished (at least one, unless ``timeout_s``
        passed first)."""
        raise NotImplementedError(f"runner {self.name!r} runs one experiment at a time")

    def result(self, handle: Any) -> ExperimentResult:
        """Wait for a ``submit``-ted experiment; its result, or raise."""
        raise NotImplementedError(f"runner {self.name!r} runs one experiment at a time")

    def prepare(self, config: ExperimentConfig, *, cycle: int, study: str) -> None:
        """The study loop says which experiment runs next, before running the current one:
        a runner may get it ready meanwhile (Docker creates its container). Must not
        raise; the default does nothing."""

    def metadata(self) -> dict[str, Any]:
        return {"runner": self.name, "runner_source": self.source}

    def describe(self) -> str:
        return self.name

    def release(self) -> None:
        """Free what is kept between experiments (a loaded model, a worker process). The study
        loop calls it when another runner takes over and when the study ends."""

    def close(self) -> None:
        """Release what the runner holds (a client, a cluster connection)."""

    def cancel(self) -> None:
        """Stop the experiment ``run`` is executing now; called from another thread.

        ``run`` should then raise soon. Runners that cannot cancel (in-process) keep
        this no-op, and the study stops after the current experiment instead.
        """

    @abstractmethod
    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult: ...


def runner_class(name: str) -> type[Runner]:
    """The runner class registered as ``name`` (``llem_nb.config.plugins``)."""
    cls: type[Runner] = RUNNERS.get(name)
    return cls


def make_runner(value: str, *, source: str | None = None) -> Runner:
    """Build a runner from its string form: ``local``, ``subprocess``, ``docker:<image>`` …"""
    name, _, arg = value.partition(":")
    cls = runner_class(name)
    if arg:
        return cls.from_arg(arg, source=source)
    return cls(source=source)


@dataclass(frozen=True)
class RunnerSpec:
    """A resolved runner: its string value, mode, optional argument and where it came from;
    ``reason`` says why when that is not obvious (e.g. which image Docker will use here)."""

    value: str
    source: str
    reason: str = field(default="", compare=False)

    @property
    def mode(self) -> str:
        return self.value.partition(":")[0]

    @property
    def arg(self) -> str | None:
        return self.value.partition(":")[2] or None

    @property
    def image(self) -> str | None:
        """The image a ``docker:<image>`` value names (None: the backend's default image)."""
        return self.arg if self.mode == "docker" else None
