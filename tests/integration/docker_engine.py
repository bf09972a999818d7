"""A real Docker engine for the integration tests, started once per session.

``scripts/docker-engine.sh`` installs Debian's docker.io and debootstrap when missing,
starts a private dockerd (own data root and socket under .cache/docker, no bridge,
no iptables, registry traffic to a closed loopback port), builds a debootstrap base
image and the self-contained ``pytorch --cpu`` image from a wheelhouse (``vllm --cpu``
too, for the tests that ask for ``vllm_image``), and stops the daemon afterwards —
unless it was already running before the session, in which case it is left as found.
Images whose inputs did not change since an earlier session are reused, not rebuilt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "docker-engine.sh"


@dataclass
class Engine:
    """The running engine: its DOCKER_HOST, the CPU test image and an SDK client."""

    host: str
    image: str
    client: Any

    def containers_of(self, experiment_id: str | None = None) -> list[dict[str, Any]]:
        """Containers (any state) the Docker runner made for this experiment (or any), as
        the daemon lists them: one call, no per-container inspect that could race a removal."""
        from llem_nb.runners.docker.runner import EXPERIMENT_LABEL

        label = f"{EXPERIMENT_LABEL}={experiment_id}" if experiment_id else EXPERIMENT_LABEL
        return list(self.client.api.containers(all=True, filters={"label": label}))


def _script(command: str, timeout: float, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def _ping(host: str) -> bool:
    import docker

    try:
        docker.DockerClient(base_url=host, timeout=3).close()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session", name="docker_engine")
def docker_engine_fixture() -> Iterator[Engine]:
    pytest.importorskip("docker", reason="the docker SDK is not installed (pip install docker)")
    import docker
    import requests

    host = _script("host", 30).stdout.strip()
    was_running = _ping(host)
    started = _script("start", 600)
    if started.returncode != 0:
        reason = (started.stderr or started.stdout).strip().splitlines()[-3:]
        pytest.skip(f"no Docker engine could be started here: {' '.join(reason)}")
    try:
        built = _script("build", 1800, "pytorch")
        if built.returncode != 0:
            pytest.fail(f"building the CPU test image failed:\n{built.stderr[-3000:]}")
        image = built.stdout.strip().splitlines()[-1]
        client = docker.DockerClient(base_url=host, timeout=120)
        yield Engine(host=host, image=image, client=client)
        try:
            for container in client.containers.list(
                all=True, filters={"label": "org.llem-nb.experiment"}
            ):
                container.remove(force=True)
        except (docker.errors.DockerException, requests.exceptions.ConnectionError) as exc:
            print(f"docker engine gone before teardown, nothing left to remove: {exc}")
        client.close()
    finally:
        if not was_running:
            _script("stop", 120)


@pytest.fixture(scope="session", name="vllm_image")
def vllm_image_fixture(docker_engine: Engine) -> str:
    """The self-contained ``vllm --cpu`` image (vllm-cpu), built once and then reused."""
    built = _script("build", 2400, "vllm")
    if built.returncode != 0:
        pytest.fail(f"building the vLLM CPU image failed:\n{built.stderr[-3000:]}")
    return built.stdout.strip().splitlines()[-1]
