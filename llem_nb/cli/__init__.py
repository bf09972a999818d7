"""``llem-nb``: a thin command line over the notebook API.

One module per command (``demo``, ``run``, ``env``, …); each adds its parser here. Exit
codes, the same for every command: 0 all ok, 1 some experiments failed (their rows are
kept), 2 usage error, 3 config or preflight error (nothing ran), 70 internal error (a crash:
the traceback is printed), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); after 130
and 143 what finished is kept.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Any

from llem_nb._version import __version__
from llem_nb.cli.exits import (
    EXIT_CONFIG,
    EXIT_CRASH,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from llem_nb.cli.signals import sigterm_as_interrupt
from llem_nb.errors import LlemError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_CRASH",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    from llem_nb.cli import compare, demo, env, gpu_check, images, report, resume, run  # noqa: PLC0415 - import cycle at load time

    parser = argparse.ArgumentParser(prog="llem-nb", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"llem-nb {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log llem_nb's decisions (runner, image, retries) to stderr; -vv for debug",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (demo, run, resume, report, compare, env, gpu_check, images):
        command.add(sub)
    return parser


class _CliHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler ``-v`` puts on the ``llem_nb`` logger: whatever ``sys.stderr`` is now."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _log_to_stderr(level: int) -> None:
    logger = logging.getLogger("llem_nb")
    for old in [h for h in logger.handlers if isinstance(h, _CliHandler)]:
        logger.removeHandler(old)
    handler = _CliHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        _log_to_stderr(logging.DEBUG if args.verbose > 1 else logging.INFO)
    with sigterm_as_interrupt() as sigterm:
        try:
            code = int(args.func(args))
        except LlemError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = EXIT_CONFIG
        except KeyboardInterrupt:
            print("interrupted: finished experiments are kept", file=sys.stderr)
            code = EXIT_INTERRUPTED
        except Exception:
            traceback.print_exc()
            print(
                f"internal error (exit {EXIT_CRASH}): llem-nb crashed; the traceback above is "
                "a bug in llem_nb or a plugin: please report it. Finished experiments are kept.",
                file=sys.stderr,
            )
            return EXIT_CRASH
    if sigterm.fired:
        print(
            "terminated (SIGTERM): the running experiment was stopped; finished ones are "
            "kept (llem-nb resume DIR runs the rest)",
            file=sys.stderr,
        )
        return EXIT_TERMINATED
    return code
