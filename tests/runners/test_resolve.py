"""Runner resolution: argument > env > study > user config > auto-detect > backend default.

Each layer is tested with every layer below it set, so the test fails if the
order is wrong. The Docker detector is injected; no daemon is needed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from llem_nb.errors import ConfigError, PreflightError
from llem_nb.runners.docker.probe import DockerProbe, isolate_backends
from llem_nb.runners.resolve import (
    RunnerSpec,
    docker_auto_detect,
    read_user_runners,
    resolve_runner,
    user_config_path,
)

ENV = {"LLEM_RUNNER_PYTORCH": "subprocess"}
STUDY = {"pytorch": "docker:study/img:1"}
USER = {"pytorch": "docker:user/img:2"}


def auto(_backend: str) -> str:
    return "docker"


def no_auto(_backend: str) -> None:
    return None


def probe(*, reachable: bool = True, nvidia: bool = True) -> DockerProbe:
    reason = "Docker 27 at unix:///x" if reachable else "no Docker daemon answers at unix:///x"
    how = "the Docker daemon has the nvidia runtime" if nvidia else "no NVIDIA Container Toolkit"
    return DockerProbe("unix:///x", True, reachable, reason, "27", nvidia, how)


def test_argument_beats_every_other_layer() -> None:
    spec = resolve_runner(
        "pytorch",
        argument="local",
        environ=ENV,
        study_runners=STUDY,
        user_runners=USER,
        auto_detect=auto,
    )
    assert spec == RunnerSpec("local", "argument")
    per_backend = resolve_runner(
        "pytorch", argument={"pytorch": "docker:arg/img:3"}, environ=ENV, auto_detect=auto
    )
    assert (per_backend.source, per_backend.image) == ("argument", "arg/img:3")


def test_a_mapping_argument_without_this_backend_falls_through_to_env() -> None:
    spec = resolve_runner("pytorch", argument={"vllm": "local"}, environ=ENV, auto_detect=auto)
    assert spec == RunnerSpec("subprocess", "env")


def test_env_beats_study_user_config_and_auto() -> None:
    spec = resolve_runner(
        "pytorch", environ=ENV, study_runners=STUDY, user_runners=USER, auto_detect=auto
    )
    assert spec == RunnerSpec("subprocess", "env")


def test_study_beats_user_config_and_auto() -> None:
    spec = resolve_runner(
        "pytorch", environ={}, study_runners=STUDY, user_runners=USER, auto_detect=auto
    )
    assert spec == RunnerSpec("docker:study/img:1", "study")
    assert spec.mode == "docker" and spec.image == "study/img:1"


def test_user_config_file_beats_auto() -> None:
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("runners:\n  pytorch: docker:user/img:2\n")
    assert read_user_runners() == USER
    spec = resolve_runner("pytorch", environ={}, study_runners={}, auto_detect=auto)
    assert spec == RunnerSpec("docker:user/img:2", "user-config")


def test_auto_detect_beats_the_backend_default() -> None:
    spec = resolve_runner("pytorch", environ={}, user_runners={}, auto_detect=auto)
    assert spec == RunnerSpec("docker", "auto")


def test_backend_default_is_last() -> None:
    spec = resolve_runner("pytorch", environ={}, user_runners={}, auto_detect=no_auto)
    assert spec == RunnerSpec("local", "default")


def test_invalid_values_name_the_layer_they_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as env_err:
        resolve_runner("pytorch", environ={"LLEM_RUNNER_PYTORCH": "kubernetes"})
    assert env_err.value.field == "LLEM_RUNNER_PYTORCH"
    with pytest.raises(ConfigError, match="not a valid image reference") as img_err:
        resolve_runner("pytorch", environ={}, study_runners={"pytorch": "docker:Bad Image"})
    assert img_err.value.field == "runners.pytorch"
    bad = tmp_path / "config.yaml"
    bad.write_text("runners:\n  pytorch: docker:team/Case\n")
    with pytest.raises(ConfigError, match="uppercase"):
        read_user_runners(bad)


def test_docker_auto_detect_needs_daemon_toolkit_and_image() -> None:
    present = docker_auto_detect("pytorch", found=probe(), image_present=lambda _i: True)
    assert present == "docker"
    for found in (probe(reachable=False), probe(nvidia=False)):
        assert docker_auto_detect("pytorch", found=found, image_present=lambda _i: True) is None


def test_docker_usable_but_image_missing_falls_back_with_a_build_note() -> None:
    with pytest.warns(UserWarning, match="llem-nb images build vllm") as caught:
        chosen = docker_auto_detect("vllm", found=probe(), image_present=lambda _i: False)
    assert chosen is None
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docker_auto_detect("vllm", found=probe(), image_present=lambda _i: False)


def test_without_a_daemon_the_real_detector_answers_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    spec = resolve_runner("pytorch", environ={}, user_runners={})
    assert spec == RunnerSpec("local", "default")


def test_one_backend_needs_no_isolation() -> None:
    specs = {"pytorch": RunnerSpec("local", "default")}
    assert isolate_backends(specs, found=probe(reachable=False)) == specs


def test_several_backends_go_to_docker_when_it_is_usable() -> None:
    specs = {"pytorch": RunnerSpec("local", "default"), "vllm": RunnerSpec("subprocess", "default")}
    out = isolate_backends(specs, found=probe(), missing_images=lambda _images: [])
    assert out == {"pytorch": RunnerSpec("docker", "auto"), "vllm": RunnerSpec("docker", "auto")}


def test_several_backends_without_docker_stop_with_install_instructions() -> None:
    specs = {"pytorch": RunnerSpec("local", "default"), "vllm": RunnerSpec("subprocess", "default")}
    with pytest.raises(PreflightError) as no_daemon:
        isolate_backends(specs, found=probe(reachable=False))
    assert "docs.docker.com/engine/install" in no_daemon.value.fix
    assert "study = study.runners(" in no_daemon.value.fix
    with pytest.raises(PreflightError, match="ask for GPUs") as no_toolkit:
        isolate_backends(specs, found=probe(nvidia=False))
    assert "NVIDIA Container Toolkit" in no_toolkit.value.fix
    assert "gpus=0" in no_toolkit.value.fix


@pytest.fixture
def nvcc_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host as CI finds it: nvcc says CUDA 13, but there is no NVIDIA driver."""
    from llem_nb.runners.docker import images

    monkeypatch.setattr(
        images, "_cuda", lambda: (13, False, "nvcc (/usr/bin/nvcc) without a driver")
    )


def test_cpu_experiments_need_no_toolkit_and_log_one_elevation_line(
    nvcc_only: None, caplog: pytest.LogCaptureFixture
) -> None:
    specs = {"pytorch": RunnerSpec("local", "default"), "vllm": RunnerSpec("subprocess", "default")}
    asked: list[list[str]] = []

    def none_missing(images: list[str]) -> list[str]:
        asked.append(images)
        return []

    with caplog.at_level("INFO", logger="llem_nb"):
        out = isolate_backends(
            specs,
            gpus={"pytorch": [0], "vllm": [0]},
            found=probe(nvidia=False),
            missing_images=none_missing,
        )
    assert {b: s.value for b, s in out.items()} == {"pytorch": "docker", "vllm": "docker"}
    assert {s.source for s in out.values()} == {"auto"}
    assert asked == [["ghcr.io/llem-nb/pytorch:0.1.0-cpu", "ghcr.io/llem-nb/vllm:0.1.0-cpu"]]
    assert [r.getMessage() for r in caplog.records] == [
        "Multi-backend study detected (pytorch, vllm). Auto-elevating all backends to Docker "
        "for isolation."
    ]
    assert "CPU image" in out["vllm"].reason


def test_a_missing_image_stops_the_study_naming_it_and_its_build_command(nvcc_only: None) -> None:
    specs = {"pytorch": RunnerSpec("local", "default"), "vllm": RunnerSpec("subprocess", "default")}
    with pytest.raises(PreflightError, match=r"vllm:0\.1\.0-cpu") as no_image:
        isolate_backends(
            specs,
            gpus={"pytorch": [0], "vllm": [0]},
            found=probe(nvidia=False),
            missing_images=lambda images: [i for i in images if "vllm" in i],
        )
    assert "llem-nb images build vllm --cpu" in no_image.value.fix
    assert "pytorch" not in no_image.value.fix.split(";")[0]


def test_gpu_experiments_on_a_host_without_a_driver_name_the_cuda_image_and_say_so(
    nvcc_only: None,
) -> None:
    from llem_nb.runners.docker.images import image_choice

    image, why = image_choice("pytorch", "all")
    assert image.endswith("-cuda13") and "cannot run on this host" in why
    cpu, why_cpu = image_choice("pytorch", 0)
    assert cpu.endswith("-cpu") and "gpus=0" in why_cpu
    spec = resolve_runner("pytorch", environ={"LLEM_RUNNER_PYTORCH": "docker"}, user_runners={})
    assert (spec.value, spec.source) == ("docker", "env")
    assert "cannot run on this host" in spec.reason and "-cpu" in spec.reason


def test_explicit_runners_per_backend_are_honoured_and_mixed_ones_warned_about() -> None:
    specs = {"pytorch": RunnerSpec("local", "study"), "vllm": RunnerSpec("subprocess", "env")}
    with pytest.warns(UserWarning, match="mixed runners.*pytorch=local, vllm=subprocess"):
        out = isolate_backends(specs, found=probe(reachable=False))
    assert out == specs
    same = {
        "pytorch": RunnerSpec("docker", "argument"),
        "vllm": RunnerSpec("docker:v/img:1", "env"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isolate_backends(same, found=probe(reachable=False)) == same


def test_the_elevation_line_reaches_a_notebook_cell_once_without_any_logging_set_up() -> None:
    """A kernel configures no logging: the line must still reach stderr (the cell), once."""
    import subprocess
    import sys

    code = """
from llem_nb.runners.docker import images
from llem_nb.runners.docker.probe import DockerProbe, isolate_backends
from llem_nb.runners.resolve import RunnerSpec
images._cuda = lambda: (13, False, "nvcc without a driver")
found = DockerProbe("unix:///x", True, True, "Docker 27", "27", False, "no toolkit")
isolate_backends(
    {"pytorch": RunnerSpec("local", "default"), "vllm": RunnerSpec("subprocess", "default")},
    gpus={"pytorch": [0], "vllm": [0]}, found=found, missing_images=lambda images: [],
)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    lines = [line for line in proc.stderr.splitlines() if "Multi-backend" in line]
    assert lines == [
        "Multi-backend study detected (pytorch, vllm). Auto-elevating all backends to Docker "
        "for isolation."
    ]
