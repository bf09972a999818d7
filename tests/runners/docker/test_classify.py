"""Docker failure classification, image references and container settings — no daemon needed.

The SDK's own exception objects (``docker.errors``) and real OS errors stand in for
what a daemon would raise; classification must read them, not message guesses.
"""

from __future__ import annotations

import builtins
import errno
import pickle
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")
requests = pytest.importorskip("requests")
from docker.errors import APIError, ImageNotFound, NotFound  # noqa: E402

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ConfigError, ExperimentTimeout, LlemError, RunnerError  # noqa: E402
from llem_nb.results.schema import ErrorInfo  # noqa: E402
from llem_nb.runners.base import make_runner
from llem_nb.runners.docker import errors  # noqa: E402
from llem_nb.runners.docker.classify import classify, classify_connection  # noqa: E402
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
from tests.support.docker_failures import api_error, failure, info  # noqa: E402

GPU_DRIVER_MSG = 'could not select device driver "" with capabilities: [[gpu]]'


def test_a_missing_image_of_ours_is_built_here_not_pulled() -> None:
    err = classify(failure(phase="pull", exc=ImageNotFound("No such image")))
    assert isinstance(err, ImagePullError)
    assert "llem-nb images build pytorch" in err.fix_suggestion
    assert "--cpu" not in err.fix_suggestion and "docker pull" not in err.fix_suggestion
    assert "/tmp/llem-abc123def456-x" in str(err)
    cpu = classify(
        failure(phase="pull", exc=ImageNotFound("x"), image="ghcr.io/llem-nb/vllm:0.1.0-cpu")
    )
    assert "llem-nb images build pytorch --cpu" in cpu.fix_suggestion
    pulled = classify(failure(phase="pull", exc=api_error("connection refused", 500)))
    assert isinstance(pulled, ImagePullError)


def test_a_missing_image_of_the_users_own_is_pulled_and_never_built_under_another_tag() -> None:
    err = classify(failure(phase="pull", exc=ImageNotFound("x"), image="nonexistent/image:v999"))
    assert isinstance(err, ImagePullError)
    assert "docker pull nonexistent/image:v999" in err.fix_suggestion
    assert "images build" not in err.fix_suggestion


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


CAUSED_BY_OOM = """Traceback (most recent call last):
  File "/opt/llem/src/llem_nb/backends/pytorch.py", line 210, in generate
    out = self.model.generate(**batch)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/opt/llem/src/llem_nb/measure/harness.py", line 180, in run
llem_nb.errors.BackendError: generate failed for batch 3
"""


@pytest.mark.parametrize(
    ("type_", "message", "traceback"),
    [
        ("OutOfMemoryError", "CUDA out of memory. Tried to allocate 20.00 MiB", None),
        ("RuntimeError", "CUDA error: out of memory", None),
        ("RuntimeError", "CUDA out of memory. Tried to allocate 1.50 GiB", None),
        (
            "ValueError",
            "No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
            None,
        ),
        (
            "ValueError",
            "To serve at least one request with the model's max seq len (4096), (2.0 GiB KV "
            "cache is needed, which is larger than the available KV cache memory (1.1 GiB).",
            None,
        ),
        ("BackendError", "generate failed for batch 3", CAUSED_BY_OOM),
    ],
)
def test_out_of_memory_from_the_error_file_is_an_oom_error_whatever_carries_it(
    type_: str, message: str, traceback: str | None
) -> None:
    error = ErrorInfo(type=type_, message=message, traceback=traceback or f"{type_}: {message}")
    err = classify(failure(exit_code=1, error=error, logs=f"llem_nb entrypoint: {type_}: x\n"))
    assert isinstance(err, OOMError), err
    assert err.category == "oom" and err.error_type == type_
    assert err.remote_traceback == error.traceback
    assert "memory_limit" in err.fix_suggestion


def test_an_oom_in_the_log_tail_beats_a_generic_error_file() -> None:
    """vLLM's engine process dies of OOM; the main process reports only that it died."""
    logs = "ERROR engine core: torch.OutOfMemoryError: CUDA out of memory.\n"
    error = info("EngineDeadError", "EngineCore encountered an issue")
    assert isinstance(classify(failure(exit_code=1, error=error, logs=logs)), OOMError)


@pytest.mark.parametrize(
    "text",
    [
        "Got permission denied while trying to connect to the Docker daemon socket",
        "dial unix /var/run/docker.sock: connect: PERMISSION DENIED",
        "Permission Denied",
    ],
)
def test_a_permission_denied_daemon_message_is_a_permission_error_however_cased(text: str) -> None:
    conn = classify_connection(
        requests.exceptions.ConnectionError(text), host="unix:///var/run/docker.sock"
    )
    assert isinstance(conn, DockerPermissionError), conn
    started = classify(failure(phase="start", exc=api_error(text, 403)))
    assert isinstance(started, DockerPermissionError), started
    assert started.exchange_dir == "/tmp/llem-abc123def456-x"
    assert "docker group" in started.fix_suggestion


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


def test_n_gpus_are_requested_by_the_uuids_of_the_first_n_host_gpus() -> None:
    from llem_nb.testing import FakeGpu, FakeNvml

    uuids = [f"GPU-{i}1111111-2222-3333-4444-555555555555" for i in range(3)]
    nvml = FakeNvml([FakeGpu(uuid=u) for u in uuids])
    runner = DockerRunner("img:1", user="", nvml=nvml)
    two = runner.shared_kwargs(ExperimentConfig(model="m", gpus=2))
    (request,) = two["device_requests"]
    assert request["DeviceIDs"] == uuids[:2] and request["Count"] == 0
    assert request["Capabilities"] == [["gpu"]]
    assert runner.shared_kwargs(ExperimentConfig(model="m", gpus=0))["device_requests"] is None
    (request,), _ = gpu_requests(4, uuids)  # more than the host has: a count, Docker says no
    assert request["Count"] == 4 and not request["DeviceIDs"]


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
        kw = runner.container_kwargs(config, exchange)
        assert secret not in exchange.config_path.read_text()
    finally:
        exchange.cleanup()
    env = kw["environment"]
    assert env["HF_TOKEN"] == secret and env["EXTRA"] == "1"
    assert env["LLEM_BACKENDS"].split(",")[0] == "mine=my_pkg:Backend"  # then ours, if any
    assert env["LLEM_CONFIG_PATH"] == f"{CONTAINER_DIR}/{config.config_hash}_config.json"
    vols = kw["volumes"]
    assert vols[str(exchange.dir)] == {"bind": CONTAINER_DIR, "mode": "rw"}
    assert vols[str(tiny_model_dir.resolve())]["mode"] == "ro"
    assert vols[str(tmp_path / "hub")] == {"bind": "/run/hf-cache/hub", "mode": "ro"}
    assert kw["mem_limit"] == kw["memswap_limit"] == "2g"
    assert kw["device_requests"] is None and kw["network_mode"] == "none"
    assert kw["user"] is None and kw["shm_size"] == "8g"


def test_the_oom_signature_counts_within_the_last_50_log_lines_only() -> None:
    error = info("EngineDeadError", "EngineCore encountered an issue")
    oom = "ERROR engine core: torch.OutOfMemoryError: CUDA out of memory.\n"
    within = oom + "".join(f"shutdown step {k}\n" for k in range(49))
    assert isinstance(classify(failure(exit_code=1, error=error, logs=within)), OOMError)
    beyond = oom + "".join(f"shutdown step {k}\n" for k in range(50))
    err = classify(failure(exit_code=1, error=error, logs=beyond))
    assert type(err) is ContainerError
    assert err.error_type == "EngineDeadError"
    assert err.stderr_snippet.splitlines() == [f"shutdown step {k}" for k in range(30, 50)]


def test_eperm_reaching_the_daemon_is_a_permission_error() -> None:
    blocked = requests.exceptions.ConnectionError(
        "Connection aborted.", builtins.PermissionError(errno.EPERM, "blocked by policy")
    )
    err = classify_connection(blocked, host="unix:///var/run/docker.sock")
    assert isinstance(err, DockerPermissionError)
    other = requests.exceptions.ConnectionError(
        "Connection aborted.", OSError(errno.EIO, "blocked by policy")
    )
    assert isinstance(classify_connection(other, host="tcp://h:2375"), DockerUnavailableError)


def test_a_gpu_driver_message_without_an_http_status_is_a_gpu_access_error() -> None:
    exc = APIError(GPU_DRIVER_MSG)
    err = classify(failure(phase="start", exc=exc, gpu_requested=True))
    assert isinstance(err, GPUAccessError)
    assert GPU_DRIVER_MSG in str(err)
    refused = classify(
        failure(phase="start", exc=api_error(GPU_DRIVER_MSG, 400), gpu_requested=True)
    )
    assert type(refused) is ContainerError and "HTTP 400" in str(refused)


def test_the_seeds_error_names_catch_ours() -> None:
    """Code written against LLenergyMeasure's Docker errors catches what we raise."""
    from llem_nb.runners import docker
    from llem_nb.runners.docker import errors

    pairs = {
        docker.DockerImagePullError: errors.ImagePullError,
        docker.DockerGPUAccessError: errors.GPUAccessError,
        docker.DockerOOMError: errors.OOMError,
        docker.DockerTimeoutError: errors.ContainerTimeoutError,
        docker.DockerPermissionError: errors.DockerPermissionError,
        docker.DockerContainerError: errors.ContainerError,
    }
    for seed, ours in pairs.items():
        with pytest.raises(seed):
            raise ours("boom")
    assert {name: cls for name, cls in errors.SEED_ALIASES.items()} == {
        "DockerImagePullError": errors.ImagePullError,
        "DockerGPUAccessError": errors.GPUAccessError,
        "DockerOOMError": errors.OOMError,
        "DockerTimeoutError": errors.ContainerTimeoutError,
        "DockerPermissionError": errors.DockerPermissionError,
        "DockerContainerError": errors.ContainerError,
    }
