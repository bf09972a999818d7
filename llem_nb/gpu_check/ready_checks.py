"""The readiness checks of issue 24, one function per item, each on a ``Host``.

On a GPU the host is the real NVML, ``torch.cuda`` and a tiny model; with ``--fake`` the NVML
simulator, ``FakeCuda`` and the fake vLLM. A check returns a line of detail (ok), raises
``Skip`` (why it cannot run here) or fails with any other exception (the table says which).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem_nb.backends import _vllm_args
from llem_nb.backends._gpu_place import (
    MEMORY_MARGIN,
    max_memory,
    nvml_uuids,
    nvml_visible_count,
    placement,
    refuse_cpu_fallback,
)
from llem_nb.backends._hf import shape_batches
from llem_nb.backends._vllm_args import vllm_installed
from llem_nb.backends.pytorch import _ordinals
from llem_nb.backends.vllm import VllmBackend
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.energy.device import Nvml
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.nvml_devices import bare_uuid
from llem_nb.errors import ConfigError
from llem_nb.gpu_check.fake_cuda import FakeCuda
from llem_nb.measure.harness import Harness
from llem_nb.measure.thermal import wait_until_settled
from llem_nb.runners.docker.build import build_args, dockerfile_text
from llem_nb.runners.docker.container import USER_ENV
from llem_nb.runners.docker.cuda_wheels import (
    check_wheel_against_driver,
    cuda_text,
    wheel_for_driver,
)
from llem_nb.runners.docker.images import default_image, driver_cuda_version
from llem_nb.runners.docker.wheelhouse import Variant
from llem_nb.testing.vllm import fake_vllm


class Skip(Exception):
    """The check cannot run on this host (the message says why)."""


class Failed(Exception):
    """The check ran and found the problem it looks for."""


@dataclass
class Host:
    """What the checks run against (real or simulated)."""

    fake: bool
    nvml: Nvml
    cuda: Any
    model: Path
    torch_cuda: str | None
    load: Callable[[float], None]
    clock: Any


def _config(host: Host, **fields: Any) -> ExperimentConfig:
    return validate_experiment({"model": str(host.model), **fields})


def _expect(condition: bool, why: str) -> None:
    if not condition:
        raise Failed(why)


def image_tag(host: Host) -> str:
    """1: torch's CUDA build and the image tag follow the driver; this torch runs on it."""
    driver = driver_cuda_version(host.nvml)
    _expect(driver is not None, "NVML reports no CUDA driver version")
    assert driver is not None
    fit = wheel_for_driver(driver)
    check_wheel_against_driver(host.torch_cuda, driver)
    tag = default_image("pytorch", cuda=fit.major)
    return f"driver CUDA {cuda_text(driver)} → torch {fit.name}, image {tag.rsplit('/', 1)[-1]}"


def c_compiler(host: Host) -> str:
    """2: the CUDA images check for gcc; on a GPU, Triton compiles a kernel (needs gcc)."""
    final = dockerfile_text()[dockerfile_text().rindex("\nFROM ") :]
    _expect('command -v "$C_COMPILER"' in final, "the Dockerfile's final stage checks no compiler")
    _expect(build_args(Variant("pytorch", False), "b", [])["C_COMPILER"] == "gcc", "no C_COMPILER")
    gcc = shutil.which("gcc")
    if host.fake:
        return f"Dockerfile checks C_COMPILER=gcc; host gcc: {gcc or 'none'}"
    if gcc is None:
        raise Skip("no gcc on this host: torch.compile here would fail the same way")
    import torch

    compiled = torch.compile(lambda x: x * 2 + 1)
    out = compiled(torch.ones(64, device="cuda"))
    torch.cuda.synchronize()
    _expect(float(out.sum()) == 192.0, "the compiled kernel computed a wrong value")
    return f"Dockerfile checks gcc; a Triton kernel compiled and ran here ({gcc})"


def unknown_user(host: Host) -> str:
    """3: ``getpass.getuser()`` as a uid with no passwd entry, with the runner's env."""
    python = "/usr/bin/python3"
    if os.geteuid() != 0 or not os.access(python, os.X_OK):
        raise Skip("needs root and /usr/bin/python3 to run as an unknown uid")
    uid = 54321
    try:
        pwd.getpwuid(uid)
        raise Skip(f"uid {uid} exists here")
    except KeyError:
        pass
    env = {"PATH": "/usr/bin:/bin", **USER_ENV}
    done = subprocess.run(
        [python, "-c", "import getpass; print(getpass.getuser())"],
        env=env,
        cwd="/",
        user=uid,
        group=uid,
        capture_output=True,
        text=True,
        timeout=60,
    )
    _expect(done.returncode == 0, f"getuser failed: {done.stderr.strip()[-200:]}")
    return f"uid {uid}: getpass.getuser() = {done.stdout.strip()!r}"


def all_gpus_placement(host: Host) -> str:
    """4: ``gpus="all"`` with PyTorch takes one GPU when the model fits."""
    count = host.cuda.device_count()
    ordinals, note = placement(_config(host, gpus="all"), host.model, list(range(count)), host.cuda)
    if count < 2:
        return f"{count} GPU visible: gpus='all' is that GPU"
    _expect(ordinals == [0], f"a tiny model was spread over {ordinals}")
    return str(note)


def no_cpu_fallback(host: Host) -> str:
    """5: torch sees the GPUs NVML sees; a torch that cannot is refused before the run."""
    seen = nvml_visible_count(host.nvml)
    torch_sees = host.cuda.device_count() if host.cuda.is_available() else 0
    _expect(seen == torch_sees, f"NVML sees {seen} GPU(s), torch {torch_sees}")
    try:
        refuse_cpu_fallback(seen, FakeCuda([], available=False), "x", None)
    except ConfigError:
        return f"NVML and torch see {seen}; a CPU-only torch is refused"
    raise Failed("a torch without CUDA was not refused")


def prefix_cache(host: Host) -> str:
    """6: vLLM's prefix caching is off unless asked for (and recorded in engine_args)."""
    kwargs = _vllm_args.engine_kwargs(_config(host, backend="vllm"), host.model, on_cpu=False)
    _expect(kwargs.get("enable_prefix_caching") is False, "prefix caching is not off")
    return "engine_args.enable_prefix_caching = False"


def compile_window(host: Host) -> str:
    """7: with torch_compile, warm-up covers every batch shape: nothing compiles in the window."""
    _expect(len(shape_batches([5, 9, 7, 3, 3], 2)) == 3, "shape warm-up misses a shape")
    if host.fake:
        return "warm-up runs one batch per (rows, padded length); the window flag is unit-tested"
    config = _config(
        host,
        gpus=1,
        precision="bf16",
        n_prompts=6,
        batch_size=4,
        max_output_tokens=8,
        pytorch={"torch_compile": True},
        measurement={"min_window_s": 0},
        baseline={"seconds": 0},
        energy={"source": "nvml"},
    )
    result = Harness().run(config)
    _expect("compile_in_window" not in result.quality_flags, "torch.compile compiled in the window")
    return "torch_compile: no compile_in_window over 2 batch shapes"


def free_memory_cap(host: Host) -> str:
    """8: ``max_memory`` is free memory less a margin, not the total."""
    free, total = host.cuda.mem_get_info(0)
    cap = max_memory(host.cuda, [0])[0]
    _expect(cap == int(free * (1 - MEMORY_MARGIN)), "max_memory is not free memory less the margin")
    return f"GPU 0: cap {cap / 2**30:.1f} GiB of {free / 2**30:.1f} free / {total / 2**30:.0f} GiB"


def device_order(host: Host) -> str:
    """9: ``gpus=[i]`` (NVML index i) lands on the GPU NVML calls i, whatever CUDA's order."""
    ids = nvml_uuids(host.nvml)
    for index, uuid in enumerate(ids):
        ordinal = _ordinals(_config(host, gpus=[index]), host.cuda, host.nvml)[0]
        got = str(host.cuda.get_device_properties(ordinal).uuid)
        _expect(bare_uuid(got) == bare_uuid(uuid), f"NVML GPU {index} ran on CUDA {ordinal}")
    order = os.environ.get("CUDA_DEVICE_ORDER")
    return f"{len(ids)} GPU(s) matched by UUID; CUDA_DEVICE_ORDER={order}"


def vllm_gpu_list(host: Host) -> str:
    """10: vLLM's metered GPUs follow NVML and the current ``CUDA_VISIBLE_DEVICES``; the
    engine's memory comes back on unload."""
    config = _config(host, backend="vllm", gpus=[0], max_output_tokens=4)
    if host.fake:
        with fake_vllm(cpu=False):
            backend = VllmBackend(config, nvml=host.nvml, cuda=host.cuda)
            backend.load()
            try:
                _expect(backend.gpu_indices() == [0], f"metered {backend.gpu_indices()}")
            finally:
                backend.unload()
        return "fake engine on GPU 0: metered [0]"
    if not vllm_installed():
        raise Skip("vLLM is not installed here")
    free_before = host.cuda.mem_get_info(0)[0]
    backend = VllmBackend(config, nvml=host.nvml)
    backend.load()
    try:
        indices = backend.gpu_indices()
    finally:
        backend.unload()
    _expect(indices == [0], f"metered {indices}")
    back = host.cuda.mem_get_info(0)[0] / free_before
    _expect(back > 0.9, f"only {back:.0%} of the free memory came back after unload")
    return f"metered [0]; {back:.0%} of free memory back after unload"


def idle_baseline(host: Host) -> str:
    """11: after load, power is let settle before the idle baseline."""
    meter = NvmlMeter([0], nvml=host.nvml, clock=host.clock)
    try:
        host.load(5.0)
        at_once = sum(meter.idle_power_w(1.0).values())
        settle = wait_until_settled(meter.idle_power_w, poll_s=1.0, clock=host.clock.now)
        _expect(settle is not None, "no power readable")
        assert settle is not None
        after = sum(meter.idle_power_w(2.0).values())
    finally:
        meter.close()
    _expect(settle.settled, f"power still falling after {settle.waited_s:.0f} s")
    return f"right after load {at_once:.0f} W; after a {settle.waited_s:.0f} s settle {after:.0f} W"
