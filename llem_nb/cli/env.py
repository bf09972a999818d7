"""``llem-nb env``: what energy sources, backends and runners work on this machine, and why not."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from llem_nb.cli.images import docker_env_rows
from llem_nb.energy.factory import nvml_available
from llem_nb.energy.rapl import RaplMeter


def environment_report() -> list[tuple[str, str, str]]:
    """(what, status, why) rows describing what is usable on this machine."""
    rows: list[tuple[str, str, str]] = []
    ok, why = nvml_available()
    rows.append(("energy: nvml", "yes" if ok else "no", why))
    rapl = RaplMeter.available()
    rows.append(
        (
            "energy: rapl",
            "yes" if rapl else "no",
            "" if rapl else "/sys/class/powercap not readable",
        )
    )
    rows.append(("energy: estimate", "yes", "CPU-time model, flagged as an estimate"))
    for name, module in (("backend: pytorch", "transformers"), ("backend: vllm", "vllm")):
        found = importlib.util.find_spec(module) is not None
        rows.append((name, "yes" if found else "no", "" if found else f"pip install {module}"))

    rows.extend(docker_env_rows())
    return rows


def cmd_env(args: argparse.Namespace) -> int:
    for what, status, why in environment_report():
        print(f"{what:<22} {status:<4} {why}")
    return 0


def add(sub: Any) -> None:
    env = sub.add_parser("env", help="what energy sources, backends and runners work here")
    env.set_defaults(func=cmd_env)
