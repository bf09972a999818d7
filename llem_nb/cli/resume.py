"""``llem-nb resume DIR``: finish a study run that crashed or was interrupted.

Experiments the machine failed (disk, permission, interrupt, a crashed worker) run again;
those that failed on their own wait for ``--retry-failed``; the first line says how many of
each. An edited ``study.yaml`` is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llem_nb.cli.demo import summary_table
from llem_nb.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from llem_nb.errors import ConfigError


def cmd_resume(args: argparse.Namespace) -> int:
    """Exit codes as ``llem_nb.cli.exits`` lists them: 0 ok, 1 some failed, 130 interrupted."""
    from llem_nb.study.study import Study  # noqa: PLC0415 - keeps resume light (pydantic, yaml)

    if not Path(args.dir).exists():
        raise ConfigError(
            f"{args.dir} does not exist", field="DIR", fix="pass a study run's directory"
        )
    result = Study.resume(args.dir, args.runner, retry_failed=args.retry_failed, force=args.force)
    print(resume_line(result))
    if len(result.df):
        print(summary_table(result.df))
    print(f"results: {result.dir}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.failed else EXIT_OK


def resume_line(result: Any) -> str:
    """``resumed NAME: N already done, M re-run (machine failures), K failed (…); R run now``."""
    done = result.skipped - result.failed_kept
    return (
        f"resumed {result.name}: {done} already done, {result.rerun_machine} re-run "
        f"(machine failures), {result.failed_kept} failed (retry with --retry-failed); "
        f"{len(result.results)} run now"
    )


def add(sub: Any) -> None:
    resume = sub.add_parser("resume", help="finish a crashed or interrupted study run")
    resume.add_argument("dir", help="the study run's directory (results/<study>_<time>)")
    resume.add_argument("--runner", default=None, help="local, subprocess, docker, ray, …")
    resume.add_argument(
        "--retry-failed", action="store_true", help="run failed experiments again too"
    )
    resume.add_argument(
        "--force",
        action="store_true",
        help="resume although study.yaml changed since the last run (under the new definition)",
    )
    resume.set_defaults(func=cmd_resume)
