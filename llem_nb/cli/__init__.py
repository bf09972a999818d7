"""``llem-nb``: a thin command line over the notebook API.

One module per command (``demo``, ``run``, ``env``, …); each adds its parser here. Exit
codes, the same for every command: 0 all ok, 1 some experiments failed (their rows are
kept), 2 usage error, 3 config or preflight error (nothing ran), 130 interrupted (what
finished is kept).
"""

from __future__ import annotations

import argparse
import sys

from llem_nb._version import __version__
from llem_nb.cli.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]


def build_parser() -> argparse.ArgumentParser:
    from llem_nb import gpu_check
    from llem_nb.cli import demo, env, run
    from llem_nb.runners.docker.cli import add_images_parser

    parser = argparse.ArgumentParser(prog="llem-nb", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"llem-nb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (demo, run, env):
        command.add(sub)
    check = sub.add_parser("gpu-check", help="short real study on an NVIDIA GPU; prints a table")
    gpu_check.add_arguments(check)
    check.set_defaults(func=gpu_check.run)
    add_images_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from llem_nb.errors import LlemError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LlemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("interrupted: finished experiments are kept", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
