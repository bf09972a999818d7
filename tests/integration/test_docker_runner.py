"""The Docker runner against a real dockerd: success, and every failure the user can meet."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ExperimentTimeout
from llem_nb.runners.docker.errors import (
    ContainerError,
    ContainerTimeoutError,
    DockerPermissionError,
    GPUAccessError,
    ImagePullError,
    OOMError,
)
from llem_nb.runners.docker.runner import DockerRunner
from llem_nb.runners.local import LocalRunner

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration
SECRET = "hf_llem_test_secret_do_not_write"


@pytest.fixture
def exchange_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exchange dirs land here, so a test can see which were kept and which deleted."""
    root = tmp_path / "exchange"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setenv("HF_TOKEN", SECRET)
    return root


def fake_config(**fields: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "model": "none",
        "backend": "fake",
        "gpus": 0,
        "n_prompts": 2,
        "batch_size": 2,
        "max_output_tokens": 2,
        "warmup": {"runs": 0},
        "baseline": {"seconds": 0},
        "energy": {"source": "none"},
    }
    return ExperimentConfig.model_validate({**base, **fields})


def runner(engine: Engine, **options: Any) -> DockerRunner:
    return DockerRunner(engine.image, base_url=engine.host, **options)


def files_text(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file())


def test_tiny_model_in_a_container_matches_a_local_run(
    docker_engine: Engine, tiny_model_dir: Path, exchange_root: Path
) -> None:
    config = ExperimentConfig(
        model=str(tiny_model_dir),
        precision="fp32",
        gpus=0,
        n_prompts=4,
        batch_size=2,
        max_input_tokens=64,
        max_output_tokens=8,
        warmup={"runs": 0},
        baseline={"seconds": 0},
    )
    local = LocalRunner().run(config)
    docker = runner(docker_engine, timeout_s=300)
    boxed = docker.run(config)
    assert boxed.status == "ok", boxed.error
    assert list(exchange_root.iterdir()) == []
    docker.close()  # a cleanly exited container is removed off the critical path, by now
    assert set(boxed.model_dump()) == set(local.model_dump())
    assert boxed.config_hash == local.config_hash
    assert (boxed.input_tokens, boxed.output_tokens) == (local.input_tokens, local.output_tokens)
    assert boxed.requests is not None and local.requests is not None
    assert boxed.requests.output_tokens == local.requests.output_tokens
    assert boxed.energy_source == local.energy_source
    assert (boxed.runner, boxed.image) == ("docker", docker_engine.image)
    assert boxed.image_digest and boxed.image_digest.startswith("sha256:")
    assert boxed.environment["in_container"] is True
    assert SECRET not in boxed.to_json()
    assert docker_engine.containers_of(config.experiment_id) == []


def test_missing_image_is_an_image_pull_error_and_keeps_the_exchange_dir(
    docker_engine: Engine, fake_backend: str, exchange_root: Path
) -> None:
    config = fake_config()
    # A registry on a closed loopback port: the daemon's pull fails at once, and locally.
    image = "127.0.0.1:9/llem-nb/not-built:0"
    with pytest.raises(ImagePullError) as info:
        DockerRunner(image, base_url=docker_engine.host).run(config)
    err = info.value
    assert f"docker pull {image}" in err.fix_suggestion
    assert "images build" not in err.fix_suggestion  # another tag: not what was asked for
    kept = Path(str(err.exchange_dir))
    assert kept.is_dir() and kept.parent == exchange_root and str(kept) in str(err)
    assert SECRET not in files_text(kept)
    with pytest.raises(ImagePullError, match="not on this machine"):
        DockerRunner("llem-nb/not-built:0", base_url=docker_engine.host, pull="never").run(config)


def test_gpu_request_on_a_gpu_less_host_is_a_gpu_access_error(
    docker_engine: Engine, fake_backend: str, exchange_root: Path
) -> None:
    config = fake_config(gpus=1)
    with pytest.raises(GPUAccessError) as info:
        runner(docker_engine).run(config)
    assert "NVIDIA Container Toolkit" in info.value.fix_suggestion
    assert "could not select device driver" in str(info.value)
    assert docker_engine.containers_of(config.experiment_id) == []


def test_memory_limit_exceeded_is_an_oom_error(
    docker_engine: Engine, fake_backend: str, exchange_root: Path
) -> None:
    config = fake_config()
    boxed = runner(docker_engine, memory_limit="96m", environment={"LLEM_FAKE_ALLOC_MB": "512"})
    with pytest.raises(OOMError) as info:
        boxed.run(config)
    assert info.value.category == "oom"
    assert info.value.exit_code == 137
    assert "memory_limit" in info.value.fix_suggestion
    assert docker_engine.containers_of(config.experiment_id) == []


def test_timeout_kills_and_removes_the_container(
    docker_engine: Engine, fake_backend: str, exchange_root: Path
) -> None:
    config = fake_config(max_output_tokens=400, timeout_s=3)
    boxed = runner(docker_engine, environment={"LLEM_FAKE_STEP_S": "0.05"})
    with pytest.raises(ContainerTimeoutError) as info:
        boxed.run(config)
    assert isinstance(info.value, ExperimentTimeout)
    assert info.value.category == "timeout"
    assert "timeout_s=3" in str(info.value)
    assert docker_engine.containers_of(config.experiment_id) == []
    assert Path(str(info.value.exchange_dir)).is_dir()


def test_exception_in_the_entrypoint_carries_the_container_traceback(
    docker_engine: Engine, fake_backend: str, exchange_root: Path
) -> None:
    config = fake_config()
    with pytest.raises(ContainerError) as info:
        runner(docker_engine, environment={"LLEM_FAKE_FAIL": "generate"}).run(config)
    err = info.value
    assert err.error_type == "BackendError"
    assert err.remote_traceback and "Traceback" in err.remote_traceback
    assert "fake backend asked to fail in generate" in err.remote_traceback
    assert "in generate" in err.stderr_snippet
    kept = Path(str(err.exchange_dir))
    assert (kept / f"{config.config_hash}_error.json").is_file()
    assert (kept / "output.log").is_file()
    assert SECRET not in files_text(kept)
    restored = pickle.loads(pickle.dumps(err))
    assert (restored.remote_traceback, restored.exchange_dir) == (err.remote_traceback, str(kept))


def test_unreadable_socket_is_a_permission_error(docker_engine: Engine, fake_backend: str) -> None:
    """As root nothing is unreadable, so a forked child drops to ``nobody`` and tries."""
    if os.getuid() != 0:
        pytest.skip("needs root to drop privileges to nobody")
    config = fake_config()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, report through the pipe and exit
        os.close(read_end)
        payload: Any = "no error raised"
        try:
            os.setgid(65534)
            os.setuid(65534)
            runner(docker_engine).run(config)
        except Exception as exc:
            payload = exc
        with os.fdopen(write_end, "wb") as out:
            out.write(pickle.dumps(payload))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    err = pickle.loads(data)
    assert isinstance(err, DockerPermissionError), err
    assert "docker group" in err.fix_suggestion
    assert "DOCKER_HOST" in err.fix_suggestion


def test_cancel_from_another_thread_kills_the_container(
    docker_engine: Engine, fake_backend: str, exchange_root: Path
) -> None:
    import threading

    config = fake_config(max_output_tokens=2000)
    boxed = runner(docker_engine, environment={"LLEM_FAKE_STEP_S": "0.05"})
    raised: list[BaseException] = []

    def run() -> None:
        try:
            boxed.run(config)
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    for _ in range(600):
        if docker_engine.containers_of(config.experiment_id) or not worker.is_alive():
            break
        threading.Event().wait(0.05)
    boxed.cancel()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], ContainerError), raised
    assert docker_engine.containers_of(config.experiment_id) == []
