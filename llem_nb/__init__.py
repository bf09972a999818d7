"""llem_nb: measure the energy of LLM inference from a notebook.

Build a ``Study``, run it, get a pandas DataFrame with one row per
experiment × cycle, plot it::

    import llem_nb as ll
    study = ll.Study("batch", model=ll.demo_model()).sweep(batch_size=[1, 2, 4])
    res = study.run()
    ll.plots.energy_per_token(res.df)

Names load on first use, so ``import llem_nb`` stays fast and a container or worker
that only runs experiments never imports plotting or widget code. Importing has no side
effects: nothing is registered, wired or written to the environment.
"""

import importlib as _importlib
from typing import Any as _Any

from llem_nb._version import __version__ as __version__

_PUBLIC: dict[str, str] = {
    # the error root and its branches a notebook catches
    "LlemError": "llem_nb.errors",
    "LlemWarning": "llem_nb.errors",
    "BackendError": "llem_nb.errors",
    "ConfigError": "llem_nb.errors",
    "MeterError": "llem_nb.errors",
    "PreflightError": "llem_nb.errors",
    "ResultError": "llem_nb.errors",
    "RunnerError": "llem_nb.errors",
    # defining and running studies
    "Study": "llem_nb.study.study",
    "run_experiment": "llem_nb.study.experiment",
    "ExperimentConfig": "llem_nb.config.experiment",
    "StudyConfig": "llem_nb.config.study",
    "demo_model": "llem_nb.backends.models",
    "tiny_model": "llem_nb.backends.models",
    "resolve_runner": "llem_nb.runners.resolve",
    "images": "llem_nb.runners.docker.ensure_images",
    # result types and the verbs over them
    "ExperimentResult": "llem_nb.results.schema",
    "StudyResult": "llem_nb.run.result",
    "RunHandle": "llem_nb.run.handle",
    "StudyLocked": "llem_nb.run.lock",
    "load_results": "llem_nb.results.frame",
    "load_timeseries": "llem_nb.results.timeseries",
    "load_reference": "llem_nb.results.reference",
    "summarize": "llem_nb.results.stats",
    "compare": "llem_nb.results.compare",
    "Comparison": "llem_nb.results.compare",
    "recommend": "llem_nb.results.recommend",
    "Recommendation": "llem_nb.results.recommend",
    "export": "llem_nb.results.export",
    "report": "llem_nb.reporting.build",
    # extending llem_nb
    "Backend": "llem_nb.backends.base",
    "Runner": "llem_nb.runners.base",
    "register_backend": "llem_nb.config.plugins",
    "register_runner": "llem_nb.config.plugins",
    # widgets
    "LiveProgress": "llem_nb.widgets.progress",
    "ResultsExplorer": "llem_nb.widgets.explorer",
    "RunnerPicker": "llem_nb.widgets.runner_picker",
    "StudyBuilder": "llem_nb.widgets.study_builder",
    # subpackages offered whole (the path is the name's own)
    "plots": "llem_nb.plots",
    "widgets": "llem_nb.widgets",
    "testing": "llem_nb.testing",
}
"""Every public name → where it lives: the one table ``__all__`` and loading come from.
Docker's names live in ``llem_nb.runners.docker``; ``images`` (``ll.images.ensure(study)``)
is the one way in a notebook gets the images a study needs."""

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str) -> _Any:
    path = _PUBLIC.get(name)
    if path is None:
        raise AttributeError(f"module 'llem_nb' has no attribute {name!r}")
    module = _importlib.import_module(path)
    value = module if path == f"llem_nb.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
