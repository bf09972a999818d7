"""``llem-nb gpu-check`` / ``python -m llem_nb.gpu_check``: the real NVML path, end to end.

On a machine with an NVIDIA GPU, in one run: what this GPU's NVML does (the energy
counter's update period, PowerUsage's averaging window, read costs; the trace is saved as
``nvml_trace.csv``), then a tiny Llama and a ~1B-parameter random-init Llama, PyTorch
backend, bf16, one GPU, batch 1/8/32, each with the GPU default 10 s minimum window and a
5 s idle baseline. Prints gross and net J/output-token, tokens/s, counter-vs-power ratio,
idle power, the prefill share, TTFT p50 next to a CUDA-event reference, and the flags; then
one config measured in this process and through the container entrypoint (as a container
runs it, no Docker needed), side by side; then a small study run without and with reuse
(study wall ÷ Σ windows, loads); and writes the results dir (result JSONs, Parquet
timeseries, ``summary.csv``). Needs torch, transformers, nvidia-ml-py, pandas, pyyaml,
pyarrow, pydantic, platformdirs and tqdm (scripts/gpu_check.sh carries the last three as
wheels); no accelerate, no network.

``--fake`` runs the same code on the CPU against a fake NVML GPU (CI, no GPU).
Exit codes: 0 all measured, 1 an experiment failed, 2 no usable GPU here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llem_nb.energy.device import Nvml


class NoGpu(Exception):
    """No NVIDIA GPU usable here (message says why)."""


def require_gpu() -> None:
    """Raise ``NoGpu`` unless NVML and CUDA both see a GPU."""
    from llem_nb.energy.factory import nvml_available

    ok, why = nvml_available()
    if not ok:
        raise NoGpu(why)
    try:
        import torch
    except ImportError as exc:
        raise NoGpu("torch is not installed") from exc
    if not torch.cuda.is_available():
        raise NoGpu(f"NVML sees a GPU ({why}) but torch.cuda is not available")


def _environment_line(frame: Any) -> str:
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return "no experiment succeeded"
    row = ok.iloc[0]
    versions = f"driver {row['driver_version']}, llem_nb {row['llem_nb_version']}"
    return f"GPU: {row['gpu_name']} ({versions})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llem-nb gpu-check", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="gpu-check", help="results directory")
    parser.add_argument("--models-dir", default=None, help="where to build the models (temp)")
    parser.add_argument("--fake", action="store_true", help="CPU + fake NVML GPU (no GPU needed)")


def _gpu_load(seconds: float) -> None:
    """Keep GPU 0 busy with bf16 matmuls for ``seconds`` (the probe's load step)."""
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            a = torch.tanh(a @ a)
        torch.cuda.synchronize()


def _probe(out: Path, nvml: Nvml, load: Callable[[float], None]) -> list[str]:
    """Run the NVML probe on GPU 0, save its trace, and return its lines for the output."""
    from llem_nb.energy.clock import SYSTEM_CLOCK
    from llem_nb.gpu_check.probe import probe_gpu

    with nvml.session():
        found = probe_gpu(nvml.device(0), SYSTEM_CLOCK, load)
    found.write_trace(out / "nvml_trace.csv")
    return found.lines()


def _after(out: Path, fake: bool) -> list[str]:
    """The container-path and reuse steps on one tiny model: GPU defaults on a GPU, short
    windows on the CPU with ``--fake`` (the fake GPU lives in this process only)."""
    import shutil

    from llem_nb.backends.models import tiny_model
    from llem_nb.gpu_check.entrypoint import entrypoint_lines
    from llem_nb.gpu_check.measure import experiment
    from llem_nb.gpu_check.reuse import reuse_lines

    base: dict[str, Any] = {"max_output_tokens": 32, "baseline": {"seconds": 5.0}}
    if fake:
        base = {"precision": "fp32", "gpus": 0, "max_output_tokens": 8,
                "baseline": {"seconds": 0.2}, "measurement": {"min_window_s": 0.3}}  # fmt: skip
    else:
        base |= {"precision": "bf16", "gpus": 1, "energy": {"source": "nvml"}}
    model = tiny_model(out / "check-model")
    try:
        lines = entrypoint_lines(experiment(model, 8, 32, **base), out)
        return [*lines, "", *reuse_lines(model, base, out)]
    finally:
        shutil.rmtree(model, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    """The command: exit 2 without a GPU (unless ``--fake``), else probe, measure and print."""
    from llem_nb.gpu_check.measure import run_check, summary
    from llem_nb.testing.nvml import FakeGpu, FakeNvml
    from llem_nb.testing.traces import LiveTrace

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
        nvml, load = Nvml.load(), _gpu_load
    start = time.perf_counter()
    probe_lines = _probe(out, nvml, load)
    kwargs: dict[str, Any] = {"fake": args.fake, "nvml": nvml if args.fake else None}
    if args.fake:
        kwargs |= {"batch_sizes": (1, 2), "min_window_s": 0.3, "baseline_s": 0.2}
        kwargs |= {"max_output_tokens": 16}
    models_dir = Path(args.models_dir) if args.models_dir else None
    results, frame = run_check(out, models_dir=models_dir, **kwargs)
    after = _after(out, args.fake)
    import pandas as pd

    with pd.option_context("display.width", 220, "display.max_columns", 30):
        print()
        print(_environment_line(frame))
        print("\n".join(probe_lines))
        print(summary(frame).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
        print("\n".join(after))
    print(f"\nresults: {results}  ({time.perf_counter() - start:.0f} s)")
    return 0 if (frame["status"] == "ok").all() else 1
