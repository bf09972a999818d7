"""Starting a study run: everything that can fail on bad input, before a byte is written.

``prepare_run`` expands the study, resolves and checks the runners, checks every path and
preflight (only for what this run will execute: a resume skips done experiments), then
opens (or reopens) the study dir, locked, and hands back a ``StudyRun`` to execute.
``run_study`` does both in this thread. Both take ``RunOptions`` (``llem_nb.run.options``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem_nb.config.study import StudyConfig
from llem_nb.run.loop import StudyRun
from llem_nb.run.options import RunOptions
from llem_nb.run.paths import check_datasets, check_results_dir
from llem_nb.run.plan import make_tasks, preflight, resolve_runners, valid_points
from llem_nb.run.progress import default_view
from llem_nb.run.result import StudyResult
from llem_nb.run.studydir import open_study_dir
from llem_nb.runners.base import Runner


def run_study(
    config: StudyConfig, options: RunOptions | None = None, /, **values: Any
) -> StudyResult:
    """``prepare_run(config, options, **values).execute()``: the whole study, in this thread."""
    return prepare_run(config, options, **values).execute()


def prepare_run(
    config: StudyConfig, options: RunOptions | None = None, /, **values: Any
) -> StudyRun:
    """Check everything, then open (or reopen, with ``resume``) the study dir, locked.

    ``options`` (``RunOptions``), changed by ``values`` (its field names). Preflight checks
    only what this run will execute (a resume skips done experiments). ``progress``: show
    the default view (``run.progress.default_view``); other views subscribe through
    ``callbacks``.
    """
    opts = RunOptions.build(options, **values)
    runner, results_dir = opts.runner, opts.results_dir
    points, invalid = valid_points(config)
    check_results_dir(results_dir)
    check_datasets(points)
    backends = sorted({p.config.backend for p in points})
    runners = resolve_runners(backends, runner, config.runners, points)
    opened = open_study_dir(
        config,
        make_tasks(points, config),
        results_dir=Path(results_dir),
        resume=opts.resume,
        retry_failed=opts.retry_failed,
        force=opts.force,
        sync_interval_s=opts.sync_interval_s,
        check=lambda tasks: preflight([t.point for t in tasks], runners),
    )
    try:
        run = StudyRun(
            config=config,
            study_dir=opened.dir,
            tasks=opened.tasks,
            skipped=opened.skipped,
            resumed=opened.resumed,
            rerun_machine=opened.rerun_machine,
            failed_kept=opened.failed_kept,
            invalid=invalid,
            runners=runners,
            owned_runners=not isinstance(runner, Runner),
            journal=opened.journal,
            lock=opened.lock,
            nvml=opts.nvml,
        )
        for callback in opts.callbacks:
            run.subscribe(callback)
        if opts.progress:
            view = default_view(len(run.tasks))
            if view is not None:
                run.subscribe(view)
                run.on_close(view.close)
    except BaseException:
        opened.journal.close()
        opened.lock.release()
        raise
    return run
