"""``llem-nb resume DIR``: finish a study run that crashed or was interrupted."""

from __future__ import annotations

import argparse
from typing import Any

from llem_nb.cli.demo import summary_table


def cmd_resume(args: argparse.Namespace) -> int:
    """Exit codes as ``llem_nb.cli`` lists them: 0 ok, 1 some failed, 130 interrupted (this
    module cannot import them from the package that imports it)."""
    from llem_nb.study.study import Study  # noqa: PLC0415 - keeps resume light (pydantic, yaml)

    result = Study.resume(args.dir, args.runner, retry_failed=args.retry_failed)
    done = len(result.results)
    print(f"resumed {result.name}: {result.skipped} already done, {done} run now")
    if len(result.df):
        print(summary_table(result.df))
    print(f"results: {result.dir}")
    if result.interrupted:
        return 130
    return 1 if result.failed else 0


def add(sub: Any) -> None:
    resume = sub.add_parser("resume", help="finish a crashed or interrupted study run")
    resume.add_argument("dir", help="the study run's directory (results/<study>_<time>)")
    resume.add_argument("--runner", default=None, help="local, subprocess, docker, ray, …")
    resume.add_argument(
        "--retry-failed", action="store_true", help="run failed experiments again too"
    )
    resume.set_defaults(func=cmd_resume)
