"""How a study runs (not what it measures), defined once: ``RunOptions``.

``Study.run``, ``Study.start``, ``Study.resume`` and ``run.start.prepare_run`` all take these
options by name; each builds one ``RunOptions`` (``RunOptions.build``), which refuses an
unknown name with a did-you-mean before anything runs, and the run layer reads that object
alone. ``options_signature`` shows the fields in those methods' signatures (``help()``,
Jupyter's Shift-Tab).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from llem_nb.errors import ConfigError

RunnerArg = Any
"""A runner value (``"local"``), a Runner, a {backend: value} mapping, or a picker widget."""

SYNC_INTERVAL_S = 1.0
"""At most one fsync of results and journal per this many seconds (see ``llem_nb.run.journal``)."""


@dataclass(frozen=True)
class RunOptions:
    """Every option of a study run; each field's default is the one ``Study.run`` uses."""

    runner: RunnerArg = None
    """Where experiments run: ``"local"``, ``"subprocess"``, ``"docker[:image]"``, ``"ray"``,
    a Runner, a {backend: value} mapping or a picker widget; None: resolved per backend."""
    results_dir: str | Path = "results"
    """Where the study dir ``<name>_<timestamp>`` is made (or found, with ``resume=True``)."""
    progress: bool = True
    """Show the default progress view (a widget in Jupyter, a bar in a terminal)."""
    callbacks: Sequence[Callable[..., Any]] = ()
    """Called with every ``ProgressEvent``."""
    resume: bool | str | Path = False
    """True: continue the latest run of this study under ``results_dir``; a path: that dir."""
    retry_failed: bool = False
    """A resume also re-runs the experiments that failed on their own (not only the
    machine's failures)."""
    force: bool = False
    """A resume accepts a definition that changed since the dir's last run."""
    nvml: Any = None
    """Replaces ``pynvml`` for the cooldown's temperature reads (tests: ``FakeNvml``)."""
    sync_interval_s: float = SYNC_INTERVAL_S
    """At most one fsync of results and journal per this many seconds."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, base: RunOptions | None = None, /, **values: Any) -> RunOptions:
        """``base`` (or the defaults) with ``values``; an unknown name is a ConfigError."""
        for name in values:
            if name not in cls.names():
                close = difflib.get_close_matches(name, cls.names(), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"{name!r} is not a run option{hint}",
                    field=name,
                    fix=f"use one of: {', '.join(cls.names())}",
                )
        if "callbacks" in values:
            values["callbacks"] = tuple(values["callbacks"] or ())
        return dataclasses.replace(base or cls(), **values)


F = TypeVar("F", bound=Callable[..., Any])


def options_signature(*, skip: Sequence[str] = (), **defaults: Any) -> Callable[[F], F]:
    """Show ``RunOptions``' fields as keyword parameters of a method taking ``**options``
    (``defaults``: where the method's defaults differ; ``skip``: fields it does not take)."""

    def decorate(method: F) -> F:
        signature = inspect.signature(method)
        params = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
        taken = {p.name for p in params} | set(skip)
        for f in dataclasses.fields(RunOptions):
            if f.name not in taken:
                default = defaults.get(f.name, f.default)
                kind = inspect.Parameter.KEYWORD_ONLY
                params.append(inspect.Parameter(f.name, kind, default=default, annotation=f.type))
        method.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return method

    return decorate
