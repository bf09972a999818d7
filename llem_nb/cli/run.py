"""``llem-nb run STUDY.yaml`` or ``llem-nb run --model M --backend B``: run a study file, or
one experiment without a file (the seed's ``llem run --model gpt2 --backend pytorch``), show
progress, the table and every failure.

Progress is the run layer's terminal view (a tqdm bar). After the table, each failed
experiment gets its error type, message, fix and kept directory, then one summary line.
Exit codes (``llem_nb.cli.exits``): 0 all ok, 1 some failed, 3 the study could not start
(config, preflight or results dir: nothing ran), 70 a crash, 130 interrupted, 143
terminated (SIGTERM); finished results are kept.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

from llem_nb.cli.demo import summary_table
from llem_nb.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from llem_nb.errors import ConfigError
from llem_nb.results.labels import point_label


def show_info_logs(stream: TextIO | None = None) -> logging.Handler:
    """llem_nb's INFO lines (e.g. which backends go to Docker, and why) on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("llem_nb")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def failure_lines(result: Any) -> list[str]:
    """What a user needs to act on one failed experiment: type, message, fix, kept dir."""
    error = result.error
    label = point_label(getattr(result, "point", None) or {}, model=result.config.get("model"))
    what = (
        f"{label} (experiment {result.experiment_id}, cycle {result.cycle}, "
        f"{result.config.get('backend')})"
    )
    if error is None:
        return [f"FAILED {what}: no error recorded"]
    kind = error.raised_as or error.type
    if error.raised_as and error.type != error.raised_as:
        kind += f" (inside: {error.type})"
    lines = [f"FAILED {what}: {kind}", f"  message: {error.message.strip()}"]
    lines.append(f"  fix:     {error.fix}" if error.fix else "  fix:     (none given)")
    if error.kept_dir:
        lines.append(f"  kept:    {error.kept_dir}")
    return lines


def summary_line(result: Any) -> str:
    ok = sum(r.status == "ok" for r in result.results)
    failed = len(result.failed)
    parts = [f"{ok} ok", f"{failed} failed"]
    if result.skipped:
        parts.append(f"{result.skipped} already done")
    state = "interrupted" if result.interrupted else "done"
    return f"study {result.name} {state}: {', '.join(parts)}; results in {result.dir}"


ONE_EXPERIMENT_FIELDS = ("backend", "precision", "batch_size", "n_prompts", "max_output_tokens")
"""The flags that build a one-experiment study; anything else comes from the defaults."""


def study_from_args(args: argparse.Namespace) -> Any:
    """The study to run: the file named, or one experiment built from ``--model`` and flags."""
    from llem_nb.study.study import Study  # noqa: PLC0415 - keeps run light (pydantic, yaml)

    flags = {f: getattr(args, f) for f in ONE_EXPERIMENT_FIELDS if getattr(args, f) is not None}
    if args.study is not None:
        given = sorted(f"--{f.replace('_', '-')}" for f in flags) + (
            ["--model"] if args.model else []
        )
        if given:
            raise ConfigError(
                f"give a study file or {', '.join(given)}, not both",
                field="study",
                fix="put those settings in the study file, or drop the file to run one experiment",
            )
        return Study.from_yaml(args.study)
    if not args.model:
        args.parser.error(
            "nothing to run: give a study file, or --model (and --backend) for one experiment, "
            "e.g. llem-nb run --model ./my-model --backend pytorch"
        )
    if args.gpus is not None:
        flags["gpus"] = int(args.gpus) if args.gpus.isdigit() else args.gpus
    return Study(args.name, model=args.model, **flags)


def cmd_run(args: argparse.Namespace) -> int:
    handler = show_info_logs()
    try:
        study = study_from_args(args)
        result = study.run(runner=args.runner, results_dir=args.results_dir, progress=True)
    finally:
        logging.getLogger("llem_nb").removeHandler(handler)
    if result.results or result.skipped:
        print(summary_table(result.df))
    for failed in result.failed:
        print("\n".join(failure_lines(failed)))
    print(summary_line(result))
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.failed else EXIT_OK


def add(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run a study YAML file (llem_nb's layout or LLenergyMeasure's), or one experiment "
        "with --model and --backend",
    )
    run.add_argument("study", nargs="?", default=None, help="path to study.yaml")
    run.add_argument("--model", default=None, help="one experiment: a model path or hub id")
    run.add_argument("--backend", default=None, help="pytorch or vllm (one experiment)")
    run.add_argument("--precision", default=None, help="fp32, fp16, bf16, … (one experiment)")
    run.add_argument("--batch-size", type=int, default=None)
    run.add_argument("--n-prompts", type=int, default=None)
    run.add_argument("--max-output-tokens", type=int, default=None)
    run.add_argument("--gpus", default=None, help="0 (CPU), all, or a GPU index")
    run.add_argument("--name", default="run", help="the one-experiment study's name")
    run.add_argument("--runner", default=None, help="local, subprocess, docker, docker:<image>, …")
    run.add_argument("--results-dir", default="results")
    run.set_defaults(func=cmd_run, parser=run)
