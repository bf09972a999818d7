"""A named registry of plugin classes, each a class or a lazy ``module:Class`` path.

Backends and runners use it, so "no X named Y; known: …" and the lazy import
(no torch or docker import until a plugin is actually used) live in one place.
"""

from __future__ import annotations

import importlib
from typing import Any

from llem_nb.errors import ConfigError


class Registry:
    """``get(name)`` imports a path entry on first use and keeps the class."""

    def __init__(self, kind: str, field: str, entries: dict[str, Any]) -> None:
        self.kind = kind
        self.field = field
        self._entries: dict[str, Any] = dict(entries)

    def register(self, name: str, entry: Any, *, replace: bool = True) -> None:
        if replace or name not in self._entries:
            self._entries[name] = entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(
                f"no {self.kind} named {name!r}; known: {', '.join(self.names())}",
                field=self.field,
            )
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry
