"""GPU requests reaching a container, without a GPU: a second private dockerd (Docker 20.10)
started with a stand-in ``nvidia-container-runtime-hook`` on its PATH registers the
``nvidia`` device driver, passes the requested devices as ``NVIDIA_VISIBLE_DEVICES`` and
runs the hook at container start; the stand-in records what it is given and exits 0."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.runners.docker.runner import DockerRunner
from llem_nb.testing import FakeGpu, FakeNvml

from .docker_engine import SCRIPT, Engine, docker_engine_fixture  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "tests" / "support" / "pynvml_stub"
UUIDS = [f"GPU-{i}aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" for i in range(3)]
HOOK = """#!/bin/sh
# Stand-in for the NVIDIA hook: record the arguments, the OCI state (stdin) and the
# container's config.json, expose no device, succeed.
out="$(dirname "$0")/../hook-calls/$(date +%s%N)"
mkdir -p "$out"
echo "$@" > "$out/args"
cat > "$out/state.json"
bundle=$(sed -n 's/.*"bundle":"\\([^"]*\\)".*/\\1/p' "$out/state.json")
[ -n "$bundle" ] && cp "$bundle/config.json" "$out/config.json"
exit 0
"""


@dataclass
class GpuEngine:
    host: str
    image: str
    calls: Path

    def hook_calls(self) -> list[dict[str, Any]]:
        """Each hook run: its args and the container process's environment."""
        runs = []
        for run in sorted(self.calls.iterdir()) if self.calls.exists() else []:
            spec = json.loads((run / "config.json").read_text())
            env = dict(e.split("=", 1) for e in spec["process"]["env"])
            runs.append({"args": (run / "args").read_text().split(), "env": env})
        return runs


def _script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def gpu_engine(docker_engine: Engine) -> Iterator[GpuEngine]:
    folder = ROOT / ".cache" / "docker-gpu"
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    hook = bin_dir / "nvidia-container-runtime-hook"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    env = {**os.environ, "LLEM_DOCKER_DIR": str(folder), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    started = _script("start", env)
    if started.returncode != 0:
        pytest.skip(f"a second dockerd could not start: {started.stderr[-500:]}")
    host = started.stdout.strip().splitlines()[-1]
    try:
        have = subprocess.run(
            ["docker", "-H", host, "image", "inspect", "-f", "{{.Id}}", docker_engine.image],
            capture_output=True,
            text=True,
        )
        if have.stdout.strip() != docker_engine.client.images.get(docker_engine.image).id:
            save = subprocess.Popen(
                ["docker", "-H", docker_engine.host, "save", docker_engine.image],
                stdout=subprocess.PIPE,
            )
            subprocess.run(["docker", "-H", host, "load", "-q"], stdin=save.stdout, check=True)
            assert save.wait() == 0
        yield GpuEngine(host=host, image=docker_engine.image, calls=folder / "hook-calls")
    finally:
        _script("stop", env)


def gpu_config(gpus: int, source: str = "nvml") -> ExperimentConfig:
    return ExperimentConfig(
        model="none",
        backend="fake",
        gpus=gpus,
        n_prompts=2,
        batch_size=2,
        max_output_tokens=2,
        warmup={"runs": 0},
        baseline={"seconds": 0},
        energy={"source": source},
    )


def test_two_gpus_reach_the_container_by_uuid_and_are_what_it_measures(
    gpu_engine: GpuEngine, fake_backend: str, tmp_path: Path
) -> None:
    runner = DockerRunner(
        gpu_engine.image,
        base_url=gpu_engine.host,
        timeout_s=300,
        nvml=FakeNvml([FakeGpu(uuid=u) for u in UUIDS]),
        environment={"PYTHONPATH": "/run/pynvml-stub", "LLEM_FAKE_GPUS": "1"},
        volumes={str(STUB): {"bind": "/run/pynvml-stub", "mode": "ro"}},
    )
    before = len(gpu_engine.hook_calls())
    result = runner.run(gpu_config(2))
    calls = gpu_engine.hook_calls()[before:]
    assert len(calls) == 1
    assert calls[0]["args"] == ["prestart"]
    assert calls[0]["env"]["NVIDIA_VISIBLE_DEVICES"] == ",".join(UUIDS[:2])
    assert calls[0]["env"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert [d.uuid for d in result.energy_devices] == UUIDS[:2]
    assert all(d.energy_j is not None and d.energy_j > 0 for d in result.energy_devices)

    none = runner.run(gpu_config(0, source="none"))
    assert none.status == "ok"
    assert len(gpu_engine.hook_calls()) == before + 1
