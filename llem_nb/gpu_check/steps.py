"""The GPU check's steps, run by ``llem-nb gpu-check`` (``llem_nb.cli.gpu_check``): is a GPU
here, the NVML probe with its load, the container-path and reuse comparisons, and the
line that names the GPU."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llem_nb.backends.models import tiny_model
from llem_nb.energy.clock import SYSTEM_CLOCK
from llem_nb.energy.device import Nvml
from llem_nb.energy.factory import nvml_available
from llem_nb.gpu_check.probe import probe_gpu
from llem_nb.gpu_check.reuse import reuse_lines


class NoGpu(Exception):
    """No NVIDIA GPU usable here (message says why)."""


def require_gpu() -> None:
    """Raise ``NoGpu`` unless NVML and CUDA both see a GPU."""
    ok, why = nvml_available()
    if not ok:
        raise NoGpu(why)
    try:
        import torch
    except ImportError as exc:
        raise NoGpu("torch is not installed") from exc
    if not torch.cuda.is_available():
        raise NoGpu(f"NVML sees a GPU ({why}) but torch.cuda is not available")


def environment_line(frame: Any) -> str:
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return "no experiment succeeded"
    row = ok.iloc[0]
    versions = f"driver {row['driver_version']}, llem_nb {row['llem_nb_version']}"
    return f"GPU: {row['gpu_name']} ({versions})"


def gpu_load(seconds: float) -> None:
    """Keep GPU 0 busy with bf16 matmuls for ``seconds`` (the probe's load step)."""
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            a = torch.tanh(a @ a)
        torch.cuda.synchronize()


def probe_lines(out: Path, nvml: Nvml, load: Callable[[float], None]) -> list[str]:
    """Run the NVML probe on GPU 0, save its trace, and return its lines for the output."""
    with nvml.session():
        found = probe_gpu(nvml.device(0), SYSTEM_CLOCK, load)
    found.write_trace(out / "nvml_trace.csv")
    return found.lines()


def after_lines(out: Path, fake: bool) -> list[str]:
    """The container-path and reuse steps on one tiny model: GPU defaults on a GPU, short
    windows on the CPU with ``--fake`` (the fake GPU lives in this process only)."""
    from llem_nb.gpu_check.entrypoint import entrypoint_lines  # noqa: PLC0415 - keeps steps light (pydantic)
    from llem_nb.gpu_check.measure import experiment  # noqa: PLC0415 - keeps steps light (pydantic)

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
