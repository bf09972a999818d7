"""Notebook widgets, each a thin view over plain functions (needs ``llem_nb[notebook]``).

- ``RunnerPicker``: where each backend runs; ``study.run(runner=picker)``.
- ``StudyBuilder``: a form that builds ``builder.study``.
- ``LiveProgress``: a progress callback that draws itself (``study.run()`` shows one).
- ``ResultsExplorer``: x / y / hue / facet over a results DataFrame.
"""

from __future__ import annotations

from llem_nb.widgets.explorer import ResultsExplorer
from llem_nb.widgets.progress import LiveProgress, ProgressState
from llem_nb.widgets.runner_picker import Capability, RunnerPicker, probe_capabilities
from llem_nb.widgets.study_builder import StudyBuilder, build_study

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
