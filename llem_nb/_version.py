"""The installed llem_nb version, from its package metadata (one place for it)."""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("llem_nb")
except importlib.metadata.PackageNotFoundError:
    __version__ = "0+unknown"
