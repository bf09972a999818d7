"""The images against the real engine: self-contained, labelled, reused, saved and loaded.

The two CPU images come from the session fixtures (built from the wheelhouse, or found up
to date); the seed's verification cases run experiments in them (test_docker_cli.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llem_nb import __version__
from llem_nb.errors import PreflightError
from llem_nb.runners.docker.runner import DockerRunner
from llem_nb.study.study import Study

from .docker_engine import (  # noqa: F401  (the session fixtures)
    Engine,
    docker_engine_fixture,
    vllm_image_fixture,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BASE = "llem-nb/debian-base:bookworm-numa"


def cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": engine.host}
    env.setdefault("LLEM_WHEELHOUSE_DIR", str(ROOT / ".cache" / "wheelhouse"))
    return subprocess.run(
        [sys.executable, "-m", "llem_nb.cli", *args],
        capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env,
    )  # fmt: skip


def test_the_cpu_images_run_with_nothing_from_the_host(docker_engine: Engine, vllm_image: str) -> None:
    """No mount, no network: llem_nb, torch (and vLLM) are inside, at the labelled versions."""
    for tag, extra in ((docker_engine.image, ""), (vllm_image, ", vllm.__version__")):
        labels = docker_engine.client.images.get(tag).labels
        assert labels["org.llem-nb.version"] == __version__
        assert labels["org.llem-nb.variant"] == "cpu" and labels["org.llem-nb.cuda"] == "none"
        assert labels["org.llem-nb.torch"].startswith("2.13.0")
        assert labels["org.llem-nb.python"].startswith("3.") and labels["org.llem-nb.inputs"]
        code = (
            "import llem_nb, torch" + (", vllm" if extra else "")
            + f"; print(llem_nb.__version__, torch.__version__{extra})"
        )  # fmt: skip
        out = docker_engine.client.containers.run(
            tag, ["python", "-c", code], remove=True, network_mode="none"
        )
        expected = [__version__, labels["org.llem-nb.torch"]]
        if extra:
            expected.append(labels["org.llem-nb.vllm"])
        assert out.decode().split() == expected
    assert docker_engine.client.images.get(vllm_image).labels["org.llem-nb.vllm"] == "0.32.0"


def test_a_build_whose_inputs_did_not_change_is_reused(docker_engine: Engine) -> None:
    before = docker_engine.client.images.get(docker_engine.image).id
    proc = cli(docker_engine, "images", "build", "pytorch", "--cpu", "--base-image", BASE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith(f"up to date: {docker_engine.image}")
    assert docker_engine.client.images.get(docker_engine.image).id == before


def test_images_save_and_load_carry_an_image_without_a_registry(
    docker_engine: Engine, tmp_path: Path
) -> None:
    client = docker_engine.client
    tag = "llem-nb/save-load-test:1"
    client.images.get(BASE).tag("llem-nb/save-load-test", "1")
    try:
        saved = cli(docker_engine, "images", "save", tag, str(tmp_path / "image.tar.gz"))
        assert saved.returncode == 0, saved.stderr
        assert (tmp_path / "image.tar.gz").read_bytes()[:2] == b"\x1f\x8b"
        client.images.remove(tag)
        loaded = cli(docker_engine, "images", "load", str(tmp_path / "image.tar.gz"))
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.strip() == f"loaded {tag}"
        assert client.images.get(tag).id == client.images.get(BASE).id
    finally:
        client.images.remove(tag)


def test_docker_status_and_images_list_say_what_is_here(
    docker_engine: Engine, vllm_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llem_nb.runners.docker import docker_status

    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    status = docker_status(refresh=True)
    assert status.usable and status.daemon and not status.gpu_usable
    assert "no NVIDIA Container Toolkit" in status.nvidia_how
    for backend, tag in (("pytorch", docker_engine.image), ("vllm", vllm_image)):
        image = status.image(backend, cpu=True)
        assert image is not None and image.present and image.image == tag
        assert image.labels["torch"].startswith("2.13.0")
    assert f"{docker_engine.image} present" in str(status)
    listing = cli(docker_engine, "images", "list")
    assert listing.returncode == 0
    line = next(x for x in listing.stdout.splitlines() if docker_engine.image in x)
    assert "present" in line and "torch 2.13.0" in line


def test_a_missing_default_image_stops_the_study_before_it_starts(
    docker_engine: Engine, fake_backend: str, tmp_path: Path
) -> None:
    """The fake backend has no image recipe: the study names the image and what to do."""
    study = Study("no-image", model="none", backend=fake_backend, gpus=0, energy__source="none")
    with pytest.raises(PreflightError, match=r"ghcr\.io/llem-nb/fake:.*-cpu.*not on this machine") as info:
        study.run(runner=DockerRunner(base_url=docker_engine.host), results_dir=tmp_path / "out")
    assert "docker:<image>" in info.value.fix
    assert not (tmp_path / "out").exists()
