"""A task's outcome as the row the study loop stores: the result, or its failure."""

from __future__ import annotations

import warnings

from llem_nb.results.schema import ExperimentResult
from llem_nb.run.pause import PauseRecord
from llem_nb.run.plan import Task
from llem_nb.runners.base import Runner


def run_task(runner: Runner, task: Task, study: str, record: PauseRecord) -> ExperimentResult:
    try:
        result = runner.run(task.point.config, cycle=task.cycle, study=study)
    except Exception as exc:
        return failed_result(task, study, exc, runner, record=record)
    return result.model_copy(
        update={"study": study, "point": task.point.overrides, **record.fields()}
    )


def failed_result(
    task: Task,
    study: str,
    exc: BaseException,
    runner: Runner,
    *,
    category: str | None = None,
    record: PauseRecord | None = None,
) -> ExperimentResult:
    result = ExperimentResult.failed(task.point.config, exc, cycle=task.cycle, study=study)
    if category is not None and result.error is not None:
        result.error.category = category
    update = {"point": task.point.overrides, **runner.metadata()}
    if record is not None:
        update.update(record.fields())
    return result.model_copy(update=update)


def release(runner: Runner) -> None:
    """``runner.release()``: a model that cannot be freed is a warning, not the study's end."""
    try:
        runner.release()
    except Exception as exc:
        warnings.warn(f"runner {runner.describe()} could not free its model: {exc!r}", stacklevel=3)
