"""Readable names for experiments: ``batch_size=8 · backend=vllm`` instead of a 12-hex id.

A label is built from an experiment's *swept* values only (the keys its study varied),
in the order the study swept them, as ``key=value`` joined by ``" · "``. It is the
``label`` column of ``load_results``, the name ``compare``/``recommend`` print, and
what progress tables and plot legends show. An experiment whose study swept nothing is
named by its model (the last part of its path or hub id). Imported peer rows are named
by their origin and the settings they vary in (see ``results.importers``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

SEPARATOR = " · "


def format_value(value: Any) -> str:
    """A swept value as a label shows it: ints plain, floats in ``g`` form, None as ``none``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def model_name(model: Any) -> str:
    """``org/Some-Model`` or ``/path/to/Some-Model/`` → ``Some-Model``."""
    text = str(model or "").rstrip("/\\")
    return text.replace("\\", "/").rsplit("/", 1)[-1] or "experiment"


def point_label(
    point: Mapping[str, Any], keys: Sequence[str] | None = None, *, model: Any = None
) -> str:
    """The label of one experiment from its swept values (``point``, as stored in its result).

    ``keys`` fixes which swept keys appear and in which order (a study's sweep order);
    by default every key of ``point`` in its own order. With no swept key the label is
    the model's short name.
    """
    names = list(point) if keys is None else [k for k in keys if k in point]
    if not names:
        return model_name(model)
    return SEPARATOR.join(f"{key}={format_value(point[key])}" for key in names)
