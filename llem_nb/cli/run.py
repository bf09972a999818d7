"""``llem-nb run STUDY.yaml``: run a study file and print its table."""

from __future__ import annotations

import argparse
from typing import Any

from llem_nb.cli.demo import summary_table


def cmd_run(args: argparse.Namespace) -> int:
    from llem_nb.study.study import Study

    study = Study.from_yaml(args.study)
    result = study.run(runner=args.runner, results_dir=args.results_dir)
    print(summary_table(result.df))
    print(f"results: {result.dir}")
    return 0 if not result.failed else 1


def add(sub: Any) -> None:
    run = sub.add_parser("run", help="run a study YAML file")
    run.add_argument("study", help="path to study.yaml")
    run.add_argument("--runner", default=None, help="local, subprocess, docker, …")
    run.add_argument("--results-dir", default="results")
    run.set_defaults(func=cmd_run)
