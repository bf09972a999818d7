"""Single-experiment entry point for notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem_nb.backends.base import get_backend
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.errors import ConfigError
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
from llem_nb.runners.base import make_runner
from llem_nb.runners.resolve import resolve_runner


def run_experiment(
    config: ExperimentConfig | dict[str, Any] | None = None,
    *,
    runner: str | None = None,
    results_dir: str | Path | None = None,
    **fields: Any,
) -> ExperimentResult:
    """Run one experiment and return its result; raise if it fails.

    ``run_experiment(model=path, batch_size=4)`` or ``run_experiment(config)``.
    The runner is resolved like a study's (argument > env > user config > local).
    With ``results_dir`` the result is also written there.
    """
    if config is None:
        config = validate_experiment(fields)
    elif isinstance(config, dict):
        config = validate_experiment({**config, **fields})
    elif fields:
        raise ConfigError(
            "pass either a config or keyword fields, not both",
            fix="use config.model_copy(update={...}) to change a config",
        )
    spec = resolve_runner(config.backend, argument=runner)
    chosen = make_runner(spec.value, source=spec.source)
    if chosen.name in ("local", "subprocess"):
        get_backend(config.backend).preflight(config)
    try:
        result = chosen.run(config)
    finally:
        chosen.close()
    if results_dir is not None:
        ResultStore(Path(results_dir)).write(result)
    return result
