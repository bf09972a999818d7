"""llem_nb: measure the energy of LLM inference from a notebook.

Build a ``Study``, run it, get a pandas DataFrame with one row per
experiment × cycle, plot it::

    import llem_nb as ll
    study = ll.Study("batch", model=ll.demo_model()).sweep(batch_size=[1, 2, 4])
    res = study.run()
    ll.plots.energy_per_token(res.df)

Names load on first use, so ``import llem_nb`` stays fast and a container or worker
that only runs experiments never imports plotting or widget code. This module is also
where the layers are wired together: it offers the notebook's live progress widget to
the run layer, which never imports a view itself.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from llem_nb._version import __version__

_EXPORTS: dict[str, str] = {
    "LlemError": "llem_nb.errors",
    "LlemWarning": "llem_nb.errors",
    "BackendError": "llem_nb.errors",
    "ConfigError": "llem_nb.errors",
    "MeterError": "llem_nb.errors",
    "PreflightError": "llem_nb.errors",
    "ResultError": "llem_nb.errors",
    "RunnerError": "llem_nb.errors",
    "ExperimentConfig": "llem_nb.config.experiment",
    "StudyConfig": "llem_nb.config.study",
    "register_backend": "llem_nb.config.plugins",
    "register_runner": "llem_nb.config.plugins",
    "ExperimentResult": "llem_nb.results.schema",
    "load_results": "llem_nb.results.frame",
    "load_timeseries": "llem_nb.results.timeseries",
    "load_reference": "llem_nb.results.reference",
    "summarize": "llem_nb.results.stats",
    "compare": "llem_nb.results.compare",
    "Comparison": "llem_nb.results.compare",
    "recommend": "llem_nb.results.recommend",
    "Recommendation": "llem_nb.results.recommend",
    "export": "llem_nb.results.export",
    "Backend": "llem_nb.backends.base",
    "demo_model": "llem_nb.backends.models",
    "tiny_model": "llem_nb.backends.models",
    "Runner": "llem_nb.runners.base",
    "resolve_runner": "llem_nb.runners.resolve",
    "DockerRunner": "llem_nb.runners.docker.runner",
    "DockerError": "llem_nb.runners.docker.errors",
    "ImagePullError": "llem_nb.runners.docker.errors",
    "GPUAccessError": "llem_nb.runners.docker.errors",
    "OOMError": "llem_nb.runners.docker.errors",
    "ContainerTimeoutError": "llem_nb.runners.docker.errors",
    "DockerPermissionError": "llem_nb.runners.docker.errors",
    "ContainerError": "llem_nb.runners.docker.errors",
    "docker_status": "llem_nb.runners.docker.status",
    "images": "llem_nb.runners.docker.ensure_images",
    "DockerStatus": "llem_nb.runners.docker.status",
    "StudyResult": "llem_nb.run.result",
    "RunHandle": "llem_nb.run.handle",
    "StudyLocked": "llem_nb.run.lock",
    "Study": "llem_nb.study.study",
    "run_experiment": "llem_nb.study.experiment",
    "report": "llem_nb.reporting.build",
    "LiveProgress": "llem_nb.widgets.progress",
    "ResultsExplorer": "llem_nb.widgets.explorer",
    "RunnerPicker": "llem_nb.widgets.runner_picker",
    "StudyBuilder": "llem_nb.widgets.study_builder",
}
_MODULES = ("plots", "widgets", "testing")

__all__ = [
    "Backend",
    "BackendError",
    "Comparison",
    "ConfigError",
    "ContainerError",
    "ContainerTimeoutError",
    "DockerError",
    "DockerPermissionError",
    "DockerRunner",
    "DockerStatus",
    "ExperimentConfig",
    "ExperimentResult",
    "GPUAccessError",
    "ImagePullError",
    "LiveProgress",
    "LlemError",
    "LlemWarning",
    "MeterError",
    "OOMError",
    "PreflightError",
    "Recommendation",
    "ResultError",
    "ResultsExplorer",
    "RunHandle",
    "Runner",
    "RunnerError",
    "RunnerPicker",
    "Study",
    "StudyBuilder",
    "StudyConfig",
    "StudyLocked",
    "StudyResult",
    "__version__",
    "compare",
    "demo_model",
    "docker_status",
    "export",
    "images",
    "load_reference",
    "load_results",
    "load_timeseries",
    "plots",
    "recommend",
    "register_backend",
    "register_runner",
    "report",
    "resolve_runner",
    "run_experiment",
    "summarize",
    "testing",
    "tiny_model",
    "widgets",
]


def __getattr__(name: str) -> _Any:
    if name in _EXPORTS:
        value = getattr(_importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = _importlib.import_module(f"llem_nb.{name}")
    else:
        raise AttributeError(f"module 'llem_nb' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def _notebook_progress(total: int) -> _Any:
    """The live widget inside a Jupyter kernel (None elsewhere); imported only when asked."""
    from llem_nb.widgets.progress import notebook_progress

    return notebook_progress(total)


def _wire() -> None:
    from llem_nb.run.progress import register_view

    register_view(_notebook_progress)


_wire()

if _TYPE_CHECKING:
    from llem_nb import plots, testing, widgets
    from llem_nb.backends.base import Backend
    from llem_nb.backends.models import demo_model, tiny_model
    from llem_nb.config.experiment import ExperimentConfig
    from llem_nb.config.plugins import register_backend, register_runner
    from llem_nb.config.study import StudyConfig
    from llem_nb.errors import (
        BackendError,
        ConfigError,
        LlemError,
        LlemWarning,
        MeterError,
        PreflightError,
        ResultError,
        RunnerError,
    )
    from llem_nb.reporting.build import report
    from llem_nb.results.compare import Comparison, compare
    from llem_nb.results.export import export
    from llem_nb.results.frame import load_results
    from llem_nb.results.recommend import Recommendation, recommend
    from llem_nb.results.reference import load_reference
    from llem_nb.results.schema import ExperimentResult
    from llem_nb.results.stats import summarize
    from llem_nb.results.timeseries import load_timeseries
    from llem_nb.run.handle import RunHandle
    from llem_nb.run.lock import StudyLocked
    from llem_nb.run.result import StudyResult
    from llem_nb.runners.base import Runner
    from llem_nb.runners.docker.ensure_images import images
    from llem_nb.runners.docker.errors import (
        ContainerError,
        ContainerTimeoutError,
        DockerError,
        DockerPermissionError,
        GPUAccessError,
        ImagePullError,
        OOMError,
    )
    from llem_nb.runners.docker.runner import DockerRunner
    from llem_nb.runners.docker.status import DockerStatus, docker_status
    from llem_nb.runners.resolve import resolve_runner
    from llem_nb.study.experiment import run_experiment
    from llem_nb.study.study import Study
    from llem_nb.widgets.explorer import ResultsExplorer
    from llem_nb.widgets.progress import LiveProgress
    from llem_nb.widgets.runner_picker import RunnerPicker
    from llem_nb.widgets.study_builder import StudyBuilder
