"""``python -m llem_nb.gpu_check.readiness [--fake] [--docker]``: issue 24's readiness table.

Runs every check of ``ready_checks`` (items 1-11), plus bf16 support, MIG mapping and, where
the host has Docker, a container with one GPU from the image the runner would choose. Prints
one row per check: ``ok``, ``FAIL`` or ``skipped: why``. ``--fake`` runs the same checks on
the CPU against the NVML simulator, a fake ``torch.cuda`` and the fake vLLM (4 GPUs, CUDA
numbering them fastest first, a GPU whose power decays after load). Exit code 1 on any FAIL.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llem_nb.backends.models import tiny_model
from llem_nb.energy.clock import SYSTEM_CLOCK
from llem_nb.energy.device import Nvml, as_nvml
from llem_nb.energy.nvml_devices import visible_nvml_indices
from llem_nb.gpu_check import ready_checks as checks
from llem_nb.gpu_check.fake_cuda import FakeCuda
from llem_nb.gpu_check.ready_checks import Failed, Host, Skip
from llem_nb.gpu_check.steps import gpu_load
from llem_nb.runners.docker.container import USER_ENV, gpu_requests
from llem_nb.runners.docker.images import image_choice, image_present
from llem_nb.testing import FakeGpu, FakeNvml, SimClock
from llem_nb.testing.nvml import decaying_after_load

CHECKS: list[tuple[str, str, Callable[[Host], str]]] = [
    ("1", "image tag vs driver", checks.image_tag),
    ("2", "C compiler (Triton)", checks.c_compiler),
    ("3", "unknown uid has a name", checks.unknown_user),
    ("4", "gpus='all' → one GPU", checks.all_gpus_placement),
    ("5", "no silent CPU fallback", checks.no_cpu_fallback),
    ("6", "vLLM prefix cache off", checks.prefix_cache),
    ("7", "no compile in window", checks.compile_window),
    ("8", "max_memory from free", checks.free_memory_cap),
    ("9", "NVML index = CUDA GPU", checks.device_order),
    ("10", "vLLM GPU list, teardown", checks.vllm_gpu_list),
    ("11", "baseline after settle", checks.idle_baseline),
]


@dataclass
class Row:
    item: str
    check: str
    status: str
    detail: str


def run_check(item: str, name: str, check: Callable[[Host], str], host: Host) -> Row:
    """One row: ok with the check's detail, FAIL with what went wrong, or skipped: why."""
    try:
        return Row(item, name, "ok", check(host))
    except Skip as why:
        return Row(item, name, f"skipped: {why}", "")
    except Failed as why:
        return Row(item, name, "FAIL", str(why))
    except Exception as exc:
        return Row(item, name, "FAIL", f"{type(exc).__name__}: {exc}"[:300])


def bf16(host: Host) -> str:
    """bf16 runs natively from Ampere (compute capability 8.0); older GPUs emulate it."""
    major, minor = host.cuda.get_device_capability(0)
    if major < 8:
        raise Failed(f"sm_{major}{minor}: bf16 is emulated here (slow); measure fp16")
    return f"sm_{major}{minor}: native bf16"


def mig(host: Host) -> str:
    """With MIG on, the meter maps each MIG UUID to its parent GPU (whole-GPU energy)."""
    with host.nvml.session():
        current = host.nvml.device(0).mig_enabled()
    if not current:
        raise Skip("MIG is off on GPU 0")
    return f"MIG on: CUDA_VISIBLE_DEVICES maps to GPUs {visible_nvml_indices(host.nvml, None)}"


def docker_gpu(host: Host) -> str:
    """A container with ``gpus=1`` from the image the runner picks: CUDA works, gcc is there,
    the unknown uid has a name."""
    if host.fake:
        raise Skip("--fake")
    if shutil.which("docker") is None:
        raise Skip("no Docker on this host")
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        raise Skip(f"the Docker engine does not answer: {exc}") from None
    image, _ = image_choice("pytorch", 1)
    if not image_present(client, image):
        raise Skip(f"no {image} here (llem-nb images build pytorch)")
    requests, env = gpu_requests(1)
    code = (
        "import getpass, shutil, torch; "
        "print(getpass.getuser(), torch.cuda.is_available(), bool(shutil.which('gcc')))"
    )
    out = client.containers.run(
        image,
        ["python", "-c", code],
        device_requests=requests,
        environment={**env, **USER_ENV},
        user="54321:54321",
        network_mode="none",
        remove=True,
    )
    text = out.decode().strip().splitlines()[-1]
    if text != "llem True True":
        raise Failed(f"{image}: user, CUDA, gcc = {text}")
    return f"{image.rsplit('/', 1)[-1]}: user llem, CUDA available, gcc present"


EXTRA: list[tuple[str, str, Callable[[Host], str]]] = [
    ("bf16", "bf16 native", bf16),
    ("MIG", "MIG UUID mapping", mig),
    ("docker", "container with gpus=1", docker_gpu),
]


def table(rows: list[Row]) -> str:
    """The readiness table, one line per check."""
    width = max(len(r.status) for r in rows)
    lines = [f"{'item':<6} {'check':<26} {'status':<{width}}  detail"]
    lines += [f"{r.item:<6} {r.check:<26} {r.status:<{width}}  {r.detail}" for r in rows]
    return "\n".join(lines)


def fake_host(model: Path) -> Host:
    """Four simulated GPUs (CUDA numbers them fastest first), a GPU whose power decays after
    load, a torch.cuda view over them, a virtual clock."""
    uuids = [f"GPU-{c * 8}-0000-0000-0000-000000000000" for c in "abcd"]
    nvml = FakeNvml(
        [FakeGpu(uuid=u, power_w=60.0, power_avg_s=0.0) for u in uuids],
        clock=SimClock(),
        cuda_driver_version=12080,
    )

    def load(seconds: float) -> None:
        start = nvml.now()
        nvml.clock.sleep(seconds)  # type: ignore[attr-defined]
        nvml.gpus[0].trace = decaying_after_load(
            idle_w=60.0, hot_w=300.0, load_s=start, end_s=nvml.now(), tau_s=3.0
        )

    cuda = FakeCuda(uuids, fastest_first=[2, 0, 3, 1])
    return Host(True, as_nvml(nvml), cuda, model, "12.8", load, nvml.clock)


def real_host(model: Path) -> Host:
    """This machine's NVML, torch.cuda and a bf16 matmul load on GPU 0."""
    import torch

    return Host(False, Nvml.load(), torch.cuda, model, torch.version.cuda, gpu_load, SYSTEM_CLOCK)


def readiness(fake: bool, model_dir: Path | None = None) -> list[Row]:
    """Every check, in order, on this host (or the simulated one)."""
    with tempfile.TemporaryDirectory(prefix="llem-ready-") as tmp:
        model = tiny_model((model_dir or Path(tmp)) / "ready-model", head_dim=32)
        host = fake_host(model) if fake else real_host(model)
        return [run_check(i, n, c, host) for i, n, c in [*CHECKS, *EXTRA]]
