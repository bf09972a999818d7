"""Docker failure classification, image references and container settings — no daemon needed.

The SDK's own exception objects (``docker.errors``) and real OS errors stand in for
what a daemon would raise; classification must read them, not message guesses.
"""

from __future__ import annotations

import builtins
import errno
import pickle
from pathlib import Path
from typing import Any

import pytest

docker = pytest.importorskip("docker")
import requests  # noqa: E402
from docker.errors import APIError, ImageNotFound, NotFound  # noqa: E402

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ConfigError, ExperimentTimeout, LlemError, RunnerError  # noqa: E402
from llem_nb.results.schema import ErrorInfo  # noqa: E402
from llem_nb.runners.docker import errors  # noqa: E402
from llem_nb.runners.base import make_runner
from llem_nb.runners.docker.classify import Failure, classify, classify_connection  # noqa: E402
from llem_nb.runners.docker.container import gpu_requests  # noqa: E402
from llem_nb.runners.docker.errors import (  # noqa: E402
    ContainerError,
    ContainerTimeoutError,
    DockerError,
    DockerPermissionError,
    DockerUnavailableError,
    GPUAccessError,
    ImagePullError,
    OOMError,
)
from llem_nb.runners.docker.images import default_image, parse_image  # noqa: E402
from llem_nb.runners.docker.runner import CONTAINER_DIR, DockerRunner  # noqa: E402
from llem_nb.runners.exchange import Exchange  # noqa: E402

GPU_DRIVER_MSG = 'could not select device driver "" with capabilities: [[gpu]]'


def api_error(message: str, status: int, cls: type[APIError] = APIError) -> APIError:
    response = requests.Response()
    response.status_code = status
    return cls(f"{status} Server Error", response=response, explanation=message)


def failure(**fields: Any) -> Failure:
    base: dict[str, Any] = {
        "experiment_id": "abc123def456",
        "exchange_dir": "/tmp/llem-abc123def456-x",
        "image": "ghcr.io/llem-nb/pytorch:0.1.0-cuda12",
        "backend": "pytorch",
    }
    return Failure(**{**base, **fields})


def info(type_: str, message: str) -> ErrorInfo:
    return ErrorInfo(type=type_, message=message, traceback=f"Traceback …\n{type_}: {message}")


def test_image_not_found_is_an_image_pull_error_naming_pull_and_build() -> None:
    err = classify(failure(phase="pull", exc=ImageNotFound("No such image")))
    assert isinstance(err, ImagePullError)
    assert "docker pull ghcr.io/llem-nb/pytorch:0.1.0-cuda12" in err.fix_suggestion
    assert "llem-nb images build pytorch" in err.fix_suggestion
    assert "/tmp/llem-abc123def456-x" in str(err)
    pulled = classify(failure(phase="pull", exc=api_error("connection refused", 500)))
    assert isinstance(pulled, ImagePullError)


def test_gpu_driver_message_is_a_gpu_access_error_only_when_gpus_were_asked_for() -> None:
    exc = api_error(GPU_DRIVER_MSG, 500)
    err = classify(failure(phase="start", exc=exc, gpu_requested=True))
    assert isinstance(err, GPUAccessError)
    assert "NVIDIA Container Toolkit" in err.fix_suggestion
    assert "gpus=0" in err.fix_suggestion
    other = classify(failure(phase="start", exc=exc, gpu_requested=False))
    assert type(other) is ContainerError
    assert other.error_type == "APIError"


def test_other_api_errors_fall_back_to_container_error() -> None:
    err = classify(failure(phase="start", exc=api_error("invalid mount config", 400)))
    assert type(err) is ContainerError
    assert "HTTP 400" in str(err)
    missing = classify(failure(phase="start", exc=api_error("no such container", 404, NotFound)))
    assert type(missing) is ContainerError


def test_oom_killed_is_an_oom_error() -> None:
    err = classify(failure(exit_code=137, oom_killed=True, logs="Killed"))
    assert isinstance(err, OOMError)
    assert err.category == "oom"
    assert "memory limit" in str(err)


def test_sigkill_without_oom_flag_is_not_an_oom() -> None:
    err = classify(failure(exit_code=137, oom_killed=False, logs="loading bloom-560m\n"))
    assert type(err) is ContainerError
    assert "SIGKILL" in str(err)


def test_a_model_called_bloom_does_not_read_as_oom() -> None:
    logs = "loading bigscience/bloom-560m\nBackendError: could not load bloom (no room)\n"
    err = classify(
        failure(exit_code=1, error=info("BackendError", "could not load bloom"), logs=logs)
    )
    assert type(err) is ContainerError
    no_error_file = classify(failure(exit_code=1, logs=logs))
    assert type(no_error_file) is ContainerError


def test_out_of_memory_exception_types_and_precise_log_text_are_oom() -> None:
    typed = classify(failure(exit_code=1, error=info("OutOfMemoryError", "CUDA out of memory")))
    assert isinstance(typed, OOMError)
    assert typed.remote_traceback and "OutOfMemoryError" in typed.remote_traceback
    logged = classify(failure(exit_code=1, logs="torch.OutOfMemoryError: CUDA out of memory."))
    assert isinstance(logged, OOMError)


def test_timeouts_are_container_timeout_errors_and_experiment_timeouts() -> None:
    err = classify(failure(phase="timeout", timeout_s=30))
    assert isinstance(err, ContainerTimeoutError) and isinstance(err, ExperimentTimeout)
    assert err.category == "timeout" and "timeout_s=30" in str(err)
    assert isinstance(classify(failure(exit_code=124)), ContainerTimeoutError)


def test_error_file_gives_container_error_with_the_remote_traceback() -> None:
    error = info("ValueError", "bad prompt")
    err = classify(failure(exit_code=1, error=error, logs="line 1\nline 2\n"))
    assert type(err) is ContainerError
    assert err.remote_traceback == error.traceback
    assert err.stderr_snippet == "line 1\nline 2"
    assert "ValueError: bad prompt" in str(err)


def test_socket_permission_and_missing_daemon_are_told_apart() -> None:
    denied = requests.exceptions.ConnectionError(
        "Connection aborted.", builtins.PermissionError(errno.EACCES, "Permission denied")
    )
    err = classify_connection(denied, host="unix:///var/run/docker.sock")
    assert isinstance(err, DockerPermissionError)
    assert "docker group" in err.fix_suggestion
    gone = requests.exceptions.ConnectionError(FileNotFoundError(errno.ENOENT, "No such file"))
    err2 = classify_connection(gone, host="unix:///nowhere/docker.sock")
    assert isinstance(err2, DockerUnavailableError)
    assert "/nowhere/docker.sock does not exist" in str(err2)


def test_no_daemon_at_the_address_is_a_docker_unavailable_error(
    tmp_path: Path, fake_backend: str
) -> None:
    config = ExperimentConfig(model="x", backend=fake_backend, gpus=0)
    runner = DockerRunner("img:1", base_url=f"unix://{tmp_path}/docker.sock")
    with pytest.raises(DockerUnavailableError, match="does not exist"):
        runner.run(config)


@pytest.mark.parametrize(
    "cls", [ImagePullError, GPUAccessError, OOMError, ContainerTimeoutError, ContainerError]
)
def test_errors_pickle_with_everything_they_carry(cls: type[DockerError]) -> None:
    err = cls(
        "it broke",
        stderr_snippet="last line",
        exchange_dir="/tmp/x",
        image="img:1",
        exit_code=3,
        remote_traceback="Traceback …",
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert isinstance(back, RunnerError) and isinstance(back, LlemError)
    for attr in ("message", "fix", "stderr_snippet", "exchange_dir", "image", "exit_code"):
        assert getattr(back, attr) == getattr(err, attr)
    assert back.fix_suggestion == err.fix_suggestion
    assert str(back) == str(err)


def test_module_aliases_do_not_shadow_the_builtins() -> None:
    assert errors.TimeoutError is ContainerTimeoutError
    assert errors.PermissionError is DockerPermissionError
    assert builtins.TimeoutError is not ContainerTimeoutError
    assert TimeoutError is builtins.TimeoutError


@pytest.mark.parametrize(
    "ref",
    [
        "ubuntu",
        "ghcr.io/llem-nb/pytorch:0.1.0-cuda12",
        "localhost:5000/team/img:v1.2",
        "127.0.0.1:9/a/b",
        "Registry.Example.com/a/b:Tag_1",
        "img@sha256:" + "a" * 64,
    ],
)
def test_valid_references_parse(ref: str) -> None:
    assert str(parse_image(ref)) == ref


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("my image", "characters not allowed: ' '"),
        ("img;rm -rf", "characters not allowed"),
        ("team/MyImage", "uppercase"),
        ("img:-tag", "bad format"),
        ("img:a:b", "bad format"),
        ("", "empty"),
    ],
)
def test_invalid_references_are_config_errors_naming_the_field(ref: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info_:
        parse_image(ref)
    assert info_.value.field == "runner"
    with pytest.raises(ConfigError):
        make_runner(f"docker:{ref}" if ref else "docker: ")


def test_default_image_names_backend_version_and_cuda() -> None:
    assert default_image("vllm", version="1.2.3", cuda=12) == "ghcr.io/llem-nb/vllm:1.2.3-cuda12"
    assert default_image("pytorch", version="1.2.3", cuda=None).endswith(":1.2.3-cpu")


def test_make_runner_docker_image_builds_a_docker_runner() -> None:
    runner = make_runner("docker:ghcr.io/x/y:1", source="study")
    assert isinstance(runner, DockerRunner)
    assert (runner.image, runner.source) == ("ghcr.io/x/y:1", "study")
    assert runner.metadata()["image"] == "ghcr.io/x/y:1"


def test_gpu_requests_follow_the_gpus_setting() -> None:
    assert gpu_requests(0) == ([], {})
    (all_,), _ = gpu_requests("all")
    assert all_["Count"] == -1 and all_["Capabilities"] == [["gpu"]]
    (two,), _ = gpu_requests(2)
    assert two["Count"] == 2
    (listed,), env = gpu_requests([1, 3])
    assert listed["Count"] == -1 and env["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_container_settings_mount_inputs_and_pass_secrets_only_as_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    secret = "hf_secret_for_this_test"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LLEM_BACKENDS", "mine=my_pkg:Backend")
    (tmp_path / "hub").mkdir()
    config = ExperimentConfig(model=str(tiny_model_dir), gpus=0)
    runner = DockerRunner("img:1", memory_limit="2g", user="", environment={"EXTRA": "1"})
    exchange = Exchange(config, cycle=0, study="s")
    try:
        kw = runner.container_kwargs(config, exchange, {"Config": {"Labels": {}}})
        assert secret not in exchange.config_path.read_text()
    finally:
        exchange.cleanup()
    env = kw["environment"]
    assert env["HF_TOKEN"] == secret and env["EXTRA"] == "1"
    assert env["LLEM_BACKENDS"] == "mine=my_pkg:Backend"
    assert env["LLEM_CONFIG_PATH"] == f"{CONTAINER_DIR}/{config.config_hash}_config.json"
    vols = kw["volumes"]
    assert vols[str(exchange.dir)] == {"bind": CONTAINER_DIR, "mode": "rw"}
    assert vols[str(tiny_model_dir.resolve())]["mode"] == "ro"
    assert vols[str(tmp_path / "hub")] == {"bind": "/run/hf-cache/hub", "mode": "ro"}
    assert kw["mem_limit"] == kw["memswap_limit"] == "2g"
    assert kw["device_requests"] is None and kw["network_mode"] == "none"
    assert kw["user"] is None and kw["shm_size"] == "2g"


def test_an_image_that_borrows_host_packages_must_match_this_python() -> None:
    from llem_nb.errors import PreflightError
    from llem_nb.runners.docker.container import host_packages

    labels = {"org.llem-nb.host-site-packages": "/opt/llem/site-packages"}
    (mount,) = host_packages({"Config": {"Labels": labels}}).values()
    assert mount == {"bind": "/opt/llem/site-packages", "mode": "ro"}
    with pytest.raises(PreflightError, match=r"Python 2\.7"):
        host_packages({"Config": {"Labels": {**labels, "org.llem-nb.python": "2.7"}}})
    assert host_packages({"Config": {"Labels": None}}) == {}
