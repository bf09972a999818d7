"""Starting a study run: everything that can fail on bad input, before a byte is written.

``prepare_run`` expands the study, resolves and checks the runners, checks every path and
preflight (only for what this run will execute: a resume skips done experiments), then
opens (or reopens) the study dir, locked, and hands back a ``StudyRun`` to execute.
``run_study`` does both in this thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem_nb.config.study import StudyConfig
from llem_nb.energy.device import NvmlLike, as_nvml
from llem_nb.run.loop import StudyRun
from llem_nb.run.paths import check_datasets, check_results_dir
from llem_nb.run.plan import make_tasks, preflight, resolve_runners, valid_points
from llem_nb.run.progress import Callback, default_view
from llem_nb.run.result import StudyResult
from llem_nb.run.studydir import open_study_dir
from llem_nb.runners.base import Runner

RunnerArg = Any
"""A runner value (``"local"``), a Runner, a {backend: value} mapping, or a picker widget."""

SYNC_INTERVAL_S = 1.0
"""At most one fsync of results and journal per this many seconds (see ``llem_nb.run.journal``)."""


def run_study(config: StudyConfig, **kwargs: Any) -> StudyResult:
    """``prepare_run(config, **kwargs).execute()``: the whole study, in this thread."""
    return prepare_run(config, **kwargs).execute()


def prepare_run(
    config: StudyConfig,
    *,
    runner: RunnerArg = None,
    results_dir: str | Path = "results",
    progress: bool = True,
    callbacks: list[Callback] | None = None,
    resume: bool | str | Path = False,
    retry_failed: bool = False,
    force: bool = False,
    nvml: NvmlLike = None,
    sync_interval_s: float = SYNC_INTERVAL_S,
) -> StudyRun:
    """Check everything, then open (or reopen, with ``resume``) the study dir, locked.

    Preflight checks only what this run will execute (a resume skips done experiments).
    ``progress``: show the default view (``run.progress.default_view``); other views
    subscribe through ``callbacks``.
    """
    points, invalid = valid_points(config)
    check_results_dir(results_dir)
    check_datasets(points)
    backends = sorted({p.config.backend for p in points})
    runners = resolve_runners(backends, runner, config.runners, points)
    opened = open_study_dir(
        config,
        make_tasks(points, config),
        results_dir=Path(results_dir),
        resume=resume,
        retry_failed=retry_failed,
        force=force,
        sync_interval_s=sync_interval_s,
        check=lambda tasks: preflight([t.point for t in tasks], runners),
    )
    try:
        run = StudyRun(
            config=config,
            study_dir=opened.dir,
            tasks=opened.tasks,
            skipped=opened.skipped,
            resumed=opened.resumed,
            invalid=invalid,
            runners=runners,
            owned_runners=not isinstance(runner, Runner),
            journal=opened.journal,
            lock=opened.lock,
            nvml=None if nvml is None else as_nvml(nvml),
        )
        for callback in callbacks or []:
            run.subscribe(callback)
        if progress:
            view = default_view(len(run.tasks))
            if view is not None:
                run.subscribe(view)
                run.on_close(view.close)
    except BaseException:
        opened.journal.close()
        opened.lock.release()
        raise
    return run
