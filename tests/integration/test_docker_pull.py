"""The pull path against a real dockerd and a distribution-API registry served on 127.0.0.1
by ``llem_nb.testing.registry`` (the daemon pushes to and pulls from it over HTTP)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llem_nb.runners.docker.errors import ImagePullError
from llem_nb.runners.docker.images import image_present
from llem_nb.runners.docker.pull import REGISTRY_ENV, pull_image
from llem_nb.testing.registry import LocalRegistry

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration
BASE = "llem-nb/debian-base:bookworm-numa"
VERSION = "0.0.0-pulltest"
TARGET = f"ghcr.io/llem-nb/pytorch:{VERSION}-cpu"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path / "registry") as served:
        monkeypatch.setenv(REGISTRY_ENV, f"{served.address}/llem-nb")
        yield served


def test_pull_from_the_registry_tags_the_default_name(
    docker_engine: Engine, registry: LocalRegistry
) -> None:
    client = docker_engine.client
    pushed = f"{registry.address}/llem-nb/pytorch"
    client.images.get(BASE).tag(pushed, f"{VERSION}-cpu")
    try:
        for line in client.images.push(pushed, f"{VERSION}-cpu", stream=True, decode=True):
            assert "error" not in line, line
        client.images.remove(f"{pushed}:{VERSION}-cpu", noprune=True)
        assert registry.tags("llem-nb/pytorch") == [f"{VERSION}-cpu"]
        lines: list[str] = []
        before = len(registry.requests)
        tag = pull_image("pytorch", client=client, cpu=True, version=VERSION, on_line=lines.append)
        assert tag == TARGET
        assert lines[-1] == f"pulled {pushed}:{VERSION}-cpu as {TARGET}"
        assert client.images.get(TARGET).id == client.images.get(BASE).id
        assert not image_present(client, f"{pushed}:{VERSION}-cpu")
        asked = {path for _method, path in registry.requests[before:]}
        assert f"/v2/llem-nb/pytorch/manifests/{VERSION}-cpu" in asked
    finally:
        for name in (TARGET, f"{pushed}:{VERSION}-cpu"):
            if image_present(client, name):
                client.images.remove(name, noprune=True)


def test_an_image_the_registry_lacks_fails_or_falls_back_to_a_build(
    docker_engine: Engine, registry: LocalRegistry
) -> None:
    with pytest.raises(ImagePullError) as caught:
        pull_image("pytorch", client=docker_engine.client, cpu=True, version=VERSION, build=False)
    assert f"{registry.address}/llem-nb/pytorch:{VERSION}-cpu could not be pulled" in str(
        caught.value
    )
    assert "llem-nb images build pytorch --cpu" in caught.value.fix
    env = {
        **os.environ,
        "DOCKER_HOST": docker_engine.host,
        "PYTHONPATH": str(ROOT),
        "LLEM_WHEELHOUSE_DIR": str(ROOT / ".cache" / "wheelhouse"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llem_nb.cli",
            "images",
            "pull",
            "pytorch",
            "--cpu",
            "--base-image",
            BASE,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout.splitlines()
    assert out[0].startswith(f"{registry.address}/llem-nb/pytorch:")
    assert "could not be pulled" in out[0] and "building ghcr.io/llem-nb/pytorch:" in out[0]
    assert f"{docker_engine.image} is up to date" in done.stdout
    assert out[-1] == docker_engine.image
