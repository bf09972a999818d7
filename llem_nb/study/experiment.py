"""Single-experiment entry point for notebooks: a one-point study without a study dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.errors import ConfigError
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
from llem_nb.run.outcome import release
from llem_nb.run.paths import check_results_dir
from llem_nb.run.plan import plan_experiment
from llem_nb.runners.base import Runner


def run_experiment(
    config: ExperimentConfig | dict[str, Any] | None = None,
    *,
    runner: Any = None,
    results_dir: str | Path | None = None,
    **fields: Any,
) -> ExperimentResult:
    """Run one experiment and return its result; raise if it fails.

    ``run_experiment(model=path, batch_size=4)`` or ``run_experiment(config)``. It goes
    through a study's own plan (``run.plan.plan_experiment``): the runner is resolved like
    a study's (argument > env > user config > auto-detect > local; any value ``Study.run``
    takes), and the runner's preflight and the backend's checks run before anything does.
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
    if results_dir is not None:
        check_results_dir(results_dir)
    task, chosen = plan_experiment(config, runner)
    try:
        result = chosen.run(task.point.config, cycle=task.cycle)
    finally:
        release(chosen)
        if not isinstance(runner, Runner):
            chosen.close()
    if results_dir is not None:
        ResultStore(Path(results_dir)).write(result)
    return result
