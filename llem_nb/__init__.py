"""llem_nb: measure the energy of LLM inference from a notebook.

Build a ``Study``, run it, get a pandas DataFrame with one row per
experiment × cycle, plot it::

    import llem_nb as ll
    study = ll.Study("batch", model=ll.demo_model()).sweep(batch_size=[1, 2, 4])
    res = study.run()
    ll.plots.energy_per_token(res.df)

Names load on first use, so ``import llem_nb`` stays fast and a container or
worker that only runs experiments never imports plotting or widget code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BackendError": "llem_nb.errors",
    "ConfigError": "llem_nb.errors",
    "LlemError": "llem_nb.errors",
    "MeterError": "llem_nb.errors",
    "PreflightError": "llem_nb.errors",
    "ResultError": "llem_nb.errors",
    "RunnerError": "llem_nb.errors",
    "ExperimentConfig": "llem_nb.config",
    "StudyConfig": "llem_nb.config",
    "ExperimentResult": "llem_nb.results.schema",
    "load_results": "llem_nb.results.frame",
    "load_timeseries": "llem_nb.timeseries",
    "StudyResult": "llem_nb.run_loop",
    "RunHandle": "llem_nb.handle",
    "StudyLocked": "llem_nb.lock",
    "summarize": "llem_nb.stats",
    "Study": "llem_nb.study",
    "run_experiment": "llem_nb.api",
    "demo_model": "llem_nb.models",
    "tiny_model": "llem_nb.models",
    "LiveProgress": "llem_nb.widgets",
    "ResultsExplorer": "llem_nb.widgets",
    "RunnerPicker": "llem_nb.widgets",
    "StudyBuilder": "llem_nb.widgets",
    "load_reference": "llem_nb.reference",
    "report": "llem_nb.report",
    "DockerRunner": "llem_nb.runners.docker",
    "DockerError": "llem_nb.runners.errors",
    "ImagePullError": "llem_nb.runners.errors",
    "GPUAccessError": "llem_nb.runners.errors",
    "OOMError": "llem_nb.runners.errors",
    "ContainerTimeoutError": "llem_nb.runners.errors",
    "DockerPermissionError": "llem_nb.runners.errors",
    "ContainerError": "llem_nb.runners.errors",
    "resolve_runner": "llem_nb.runners.resolve",
}
_MODULES = ("plots", "widgets")

__all__ = [
    "BackendError",
    "ConfigError",
    "ContainerError",
    "ContainerTimeoutError",
    "DockerError",
    "DockerPermissionError",
    "DockerRunner",
    "ExperimentConfig",
    "ExperimentResult",
    "GPUAccessError",
    "ImagePullError",
    "LiveProgress",
    "LlemError",
    "MeterError",
    "OOMError",
    "PreflightError",
    "ResultError",
    "ResultsExplorer",
    "RunHandle",
    "RunnerError",
    "RunnerPicker",
    "Study",
    "StudyBuilder",
    "StudyConfig",
    "StudyLocked",
    "StudyResult",
    "__version__",
    "demo_model",
    "load_reference",
    "load_results",
    "load_timeseries",
    "plots",
    "report",
    "resolve_runner",
    "run_experiment",
    "summarize",
    "tiny_model",
    "widgets",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"llem_nb.{name}")
    else:
        raise AttributeError(f"module 'llem_nb' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from llem_nb import plots, widgets
    from llem_nb.api import run_experiment
    from llem_nb.config import ExperimentConfig, StudyConfig
    from llem_nb.errors import (
        BackendError,
        ConfigError,
        LlemError,
        MeterError,
        PreflightError,
        ResultError,
        RunnerError,
    )
    from llem_nb.handle import RunHandle
    from llem_nb.lock import StudyLocked
    from llem_nb.models import demo_model, tiny_model
    from llem_nb.reference import load_reference
    from llem_nb.report import report
    from llem_nb.results.frame import load_results
    from llem_nb.results.schema import ExperimentResult
    from llem_nb.run_loop import StudyResult
    from llem_nb.runners.docker import DockerRunner
    from llem_nb.runners.errors import (
        ContainerError,
        ContainerTimeoutError,
        DockerError,
        DockerPermissionError,
        GPUAccessError,
        ImagePullError,
        OOMError,
    )
    from llem_nb.runners.resolve import resolve_runner
    from llem_nb.stats import summarize
    from llem_nb.study import Study
    from llem_nb.timeseries import load_timeseries
    from llem_nb.widgets import LiveProgress, ResultsExplorer, RunnerPicker, StudyBuilder
