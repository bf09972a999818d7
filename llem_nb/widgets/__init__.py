"""Notebook widgets, each a thin view over plain functions (needs ``llem_nb[notebook]``).

- ``RunnerPicker``: where each backend runs; ``study.run(runner=picker)``.
- ``StudyBuilder``: a form that builds ``builder.value`` (a ``Study``).
- ``ResultsExplorer``: x / y / hue / facet over a results DataFrame.
- ``LiveProgress``: a progress callback that draws itself (``study.run()`` shows one).

The first three are ipywidgets ``VBox``es with a ``value`` trait: they go into any
layout (``HBox([picker, builder])``) and ``observe(callback, "value")`` hears each
change. Names load on first use: the plain functions (``widgets.capabilities``,
``widgets.study_form``, ``widgets.progress.ProgressState``) work without ipywidgets,
and a missing ipywidgets is a ``LlemError`` that says how to install it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Capability": "llem_nb.widgets.capabilities",
    "probe_capabilities": "llem_nb.widgets.capabilities",
    "build_study": "llem_nb.widgets.study_form",
    "LiveProgress": "llem_nb.widgets.progress",
    "ProgressState": "llem_nb.widgets.progress",
    "ResultsExplorer": "llem_nb.widgets.explorer",
    "RunnerPicker": "llem_nb.widgets.runner_picker",
    "StudyBuilder": "llem_nb.widgets.study_builder",
}

__all__ = [
    "Capability",
    "LiveProgress",
    "ProgressState",
    "ResultsExplorer",
    "RunnerPicker",
    "StudyBuilder",
    "build_study",
    "probe_capabilities",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llem_nb.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from llem_nb.widgets.capabilities import Capability, probe_capabilities
    from llem_nb.widgets.explorer import ResultsExplorer
    from llem_nb.widgets.progress import LiveProgress, ProgressState
    from llem_nb.widgets.runner_picker import RunnerPicker
    from llem_nb.widgets.study_builder import StudyBuilder
    from llem_nb.widgets.study_form import build_study
