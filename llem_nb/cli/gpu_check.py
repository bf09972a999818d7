"""``llem-nb gpu-check``: the GPU check (see ``llem_nb.gpu_check``) as a command.

Exit codes: 0 all measured, 1 an experiment failed, 2 no usable GPU here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from llem_nb import gpu_check
from llem_nb.energy.device import Nvml
from llem_nb.gpu_check.steps import (
    NoGpu,
    after_lines,
    environment_line,
    gpu_load,
    probe_lines,
    require_gpu,
)


def add(sub: Any) -> None:
    check = sub.add_parser("gpu-check", help="short real study on an NVIDIA GPU; prints a table")
    add_arguments(check)
    check.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llem-nb gpu-check", description=gpu_check.__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="gpu-check", help="results directory")
    parser.add_argument("--models-dir", default=None, help="where to build the models (temp)")
    parser.add_argument("--fake", action="store_true", help="CPU + fake NVML GPU (no GPU needed)")


def run(args: argparse.Namespace) -> int:
    """The command: exit 2 without a GPU (unless ``--fake``), else probe, measure and print."""
    from llem_nb.gpu_check.measure import run_check, summary  # noqa: PLC0415 - keeps gpu_check light (pydantic)
    from llem_nb.testing.nvml import FakeGpu, FakeNvml  # noqa: PLC0415 - keeps gpu_check light (pydantic)
    from llem_nb.testing.traces import LiveTrace  # noqa: PLC0415 - keeps gpu_check light (pydantic)

    out = Path(args.out)
    if args.fake:
        trace = LiveTrace(80.0)
        fake = FakeNvml([FakeGpu(power_w=trace, counter_update_s=0.05, power_avg_s=1.0)])
        nvml = Nvml(fake)

        def load(seconds: float) -> None:
            trace.set(fake.now(), 350.0)
    else:
        try:
            require_gpu()
        except NoGpu as exc:
            print(f"gpu-check needs an NVIDIA GPU: {exc}", file=sys.stderr)
            return 2
        nvml, load = Nvml.load(), gpu_load
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    probed = probe_lines(out, nvml, load)
    kwargs: dict[str, Any] = {"fake": args.fake, "nvml": nvml if args.fake else None}
    if args.fake:
        kwargs |= {"batch_sizes": (1, 2), "min_window_s": 0.3, "baseline_s": 0.2}
        kwargs |= {"max_output_tokens": 16}
    models_dir = Path(args.models_dir) if args.models_dir else None
    results, frame = run_check(out, models_dir=models_dir, **kwargs)
    after = after_lines(out, args.fake)
    import pandas as pd

    with pd.option_context("display.width", 220, "display.max_columns", 30):
        print()
        print(environment_line(frame))
        print("\n".join(probed))
        print(summary(frame).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
        print("\n".join(after))
    print(f"\nresults: {results}  ({time.perf_counter() - start:.0f} s)")
    return 0 if (frame["status"] == "ok").all() else 1
