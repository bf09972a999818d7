"""Plugin registries: every backend and runner llem_nb knows, by name, from one place.

Built-ins are lazy ``module:Class`` paths, so naming a backend never imports torch or
docker. Third parties add theirs with ``register_backend`` / ``register_runner``, or
through Python entry points (groups ``llem_nb.backends`` and ``llem_nb.runners``),
read on first use. A backend may declare a config section (a pydantic model, the
class attribute ``config_section``): its ``name.*`` keys are then accepted, and
validated by it, in configs and sweeps. Registrations made in this process travel to
child processes and containers through ``LLEM_BACKENDS`` / ``LLEM_RUNNERS`` (as lazy
paths) in the environment that whoever starts the child builds from ``plugin_env()``;
registering never writes ``os.environ``. Everything that needs a plugin name (config
validation, sweeps, runner resolution, the runner picker, the single-experiment API)
asks here.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from typing import Any

from llem_nb.errors import ConfigError


@dataclass
class _Entry:
    ref: Any
    section: Any = None


def _load(ref: Any) -> Any:
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)
    return ref


def _path_of(ref: Any) -> str | None:
    if isinstance(ref, str):
        return ref
    module, name = getattr(ref, "__module__", None), getattr(ref, "__qualname__", None)
    return f"{module}:{name}" if module and name and "<locals>" not in name else None


class Registry:
    """Names → classes (or lazy paths), with entry points and the environment read once."""

    def __init__(
        self, kind: str, field: str, builtins: dict[str, _Entry], *, group: str, env: str
    ) -> None:
        self.kind, self.field, self.group, self.env = kind, field, group, env
        self._builtins = frozenset(builtins)
        self._entries: dict[str, _Entry] = dict(builtins)
        self._exported: dict[str, str] = {}
        self._discovered = False

    def refresh(self) -> None:
        """Read the entry points again (after installing a plugin in a running kernel)."""
        self._discovered = False

    def _discover(self) -> None:
        """Entry points, then ``$env`` (``name=module:Class,…``), without replacing names."""
        if not self._discovered:
            self._discovered = True
            for point in importlib.metadata.entry_points(group=self.group):
                self._entries.setdefault(point.name, _Entry(point.value))
        self._read_env()

    def _read_env(self) -> None:
        for item in os.environ.get(self.env, "").split(","):
            name, sep, path = item.strip().partition("=")
            if sep and name and ":" in path:
                self._entries.setdefault(name, _Entry(path))

    def register(
        self, name: str, ref: Any, *, section: Any = None, child_processes: bool = True
    ) -> None:
        """Add (or replace) ``name``; with ``child_processes``, children started from
        here see its lazy path (``plugin_env``)."""
        self._entries[name] = _Entry(ref, section)
        path = _path_of(ref)
        if child_processes and path is not None:
            self._exported[name] = path
        else:
            self._exported.pop(name, None)

    def unregister(self, name: str) -> None:
        """Forget a name registered in this process (built-ins stay)."""
        if name not in self._builtins:
            self._entries.pop(name, None)
            self._exported.pop(name, None)

    def child_value(self) -> str:
        """``$env`` for a child: what this process inherited plus what it registered."""
        entries = dict(
            item.strip().split("=", 1)
            for item in os.environ.get(self.env, "").split(",")
            if "=" in item
        )
        entries.update(self._exported)
        return ",".join(f"{k}={v}" for k, v in entries.items())

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def builtin(self, name: str) -> bool:
        return name in self._builtins

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def unknown(self, name: str) -> ConfigError:
        """The error for a name nobody registered: did-you-mean, then every known name."""
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return ConfigError(
            f"no {self.kind} named {name!r}; {hint}known: {', '.join(known)}",
            field=self.field,
            fix=f"use a known {self.kind}, or register yours with register_{self.kind}() "
            f"or an entry point in the {self.group!r} group",
        )

    def get(self, name: str) -> Any:
        """The class registered as ``name`` (imported on first use). A built-in or
        ``$env`` name needs no entry-point scan (an experiment process starts faster)."""
        self._read_env()
        if name not in self._entries and name not in self.names():
            raise self.unknown(name)
        entry = self._entries[name]
        entry.ref = _load(entry.ref)
        return entry.ref

    def section(self, name: str) -> Any:
        """The pydantic model a plugin declares for its ``name.*`` keys; None if none."""
        if name not in self.names():
            return None
        entry = self._entries[name]
        if entry.section is None and not self.builtin(name):
            entry.section = getattr(self.get(name), "config_section", None)
        return _load(entry.section) if entry.section is not None else None


BACKENDS = Registry(
    "backend",
    "backend",
    {
        "pytorch": _Entry("llem_nb.backends.pytorch:PytorchBackend"),
        "vllm": _Entry("llem_nb.backends.vllm:VllmBackend"),
        "openai": _Entry("llem_nb.backends.serving.openai:OpenaiBackend"),
    },
    group="llem_nb.backends",
    env="LLEM_BACKENDS",
)

RUNNERS = Registry(
    "runner",
    "runner",
    {
        "local": _Entry("llem_nb.runners.local:LocalRunner"),
        "subprocess": _Entry("llem_nb.runners.local:SubprocessRunner"),
        "docker": _Entry("llem_nb.runners.docker.runner:DockerRunner"),
        "ray": _Entry("llem_nb.runners.ray:RayRunner"),
        "ray+docker": _Entry("llem_nb.runners.ray:RayDockerRunner"),
    },
    group="llem_nb.runners",
    env="LLEM_RUNNERS",
)


def register_backend(
    name: str, backend: Any, *, section: Any = None, child_processes: bool = True
) -> None:
    """Add a backend: a ``Backend`` subclass or a lazy ``"module:Class"`` path.

    ``section`` (or the class's ``config_section``) is the pydantic model that validates
    the backend's own ``name.*`` keys; without one, any ``name.*`` key is accepted.
    """
    BACKENDS.register(name, backend, section=section, child_processes=child_processes)


def register_runner(name: str, runner: Any, *, child_processes: bool = True) -> None:
    """Add a runner: a ``Runner`` subclass or a lazy ``"module:Class"`` path. Its values are
    ``name`` and ``name:<argument>`` (the argument goes to ``Runner.from_arg``)."""
    RUNNERS.register(name, runner, child_processes=child_processes)


def plugin_env() -> dict[str, str]:
    """The environment a child process or container needs to know this process's plugins:
    ``LLEM_BACKENDS`` / ``LLEM_RUNNERS``, each only when it has a value."""
    return {r.env: value for r in (BACKENDS, RUNNERS) if (value := r.child_value())}


def known_backends() -> list[str]:
    return BACKENDS.names()


def known_runners() -> list[str]:
    return RUNNERS.names()
