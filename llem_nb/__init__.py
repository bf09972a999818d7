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
    "StudyResult": "llem_nb.run_loop",
    "Study": "llem_nb.study",
    "run_experiment": "llem_nb.api",
    "demo_model": "llem_nb.models",
    "tiny_model": "llem_nb.models",
}
_MODULES = ("plots",)

__all__ = [
    "BackendError",
    "ConfigError",
    "ExperimentConfig",
    "ExperimentResult",
    "LlemError",
    "MeterError",
    "PreflightError",
    "ResultError",
    "RunnerError",
    "Study",
    "StudyConfig",
    "StudyResult",
    "__version__",
    "demo_model",
    "load_results",
    "plots",
    "run_experiment",
    "tiny_model",
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
    from llem_nb import plots
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
    from llem_nb.models import demo_model, tiny_model
    from llem_nb.results.frame import load_results
    from llem_nb.results.schema import ExperimentResult
    from llem_nb.run_loop import StudyResult
    from llem_nb.study import Study
