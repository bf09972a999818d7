"""Issue 24 items 1-3 without a daemon or a GPU: the torch CUDA build and the image tag follow
the host's driver, the CUDA images have a C compiler, the container user has a name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from llem_nb._version import __version__
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import PreflightError
from llem_nb.runners.docker import build, cuda_wheels, images
from llem_nb.runners.docker.container import USER_ENV, gpu_requests
from llem_nb.runners.docker.wheelhouse import TORCH_VERSION, Variant, Wheelhouse, requirements
from llem_nb.testing import FakeNvml
from tests.runners.docker.test_build import fake_wheel

pytest.importorskip("docker")

# ------------------------------------------------------------------ 1: the tag follows the driver


@pytest.mark.parametrize(
    ("driver", "build_name"),
    [(12040, "cu126"), (12080, "cu128"), (12090, "cu128"), (13000, "cu130"), (14010, "cu130")],
)
def test_torch_cuda_build_is_the_newest_the_driver_runs(driver: int, build_name: str) -> None:
    assert cuda_wheels.wheel_for_driver(driver).name == build_name


def test_a_driver_older_than_every_build_is_refused() -> None:
    with pytest.raises(PreflightError, match=r"CUDA 11\.8"):
        cuda_wheels.wheel_for_driver(11080)


def test_a_cuda_12_driver_gets_torchs_cu128_build_from_its_index_and_a_cuda12_tag(
    tmp_path: Path,
) -> None:
    variant, pip_args = build.cuda_plan("pytorch", False, ["--pre"], 12080)
    assert requirements(variant)[0] == f"torch=={TORCH_VERSION}+cu128"
    assert pip_args == ["--extra-index-url", "https://download.pytorch.org/whl/cu128", "--pre"]
    torch = fake_wheel(
        tmp_path,
        f"torch-{TORCH_VERSION}+cu128-cp311-cp311-manylinux_2_28_x86_64.whl",
        {"torch/version.py": "cuda: Optional[str] = '12.8'\n"},
    )
    house = Wheelhouse(tmp_path, (torch,), "")
    assert build._tag_for(variant, house).endswith(f"{__version__}-cuda12")
    build.check_wheel_against_driver(house.torch_cuda(), 12080)


def test_a_cuda_13_driver_keeps_pypis_build() -> None:
    variant, pip_args = build.cuda_plan("pytorch", False, [], 13000)
    assert requirements(variant)[0] == f"torch==={TORCH_VERSION}" and pip_args == []
    assert build.cuda_plan("pytorch", True, [], 12080)[0] == Variant("pytorch", True)


def test_a_wheel_newer_than_the_driver_is_refused_naming_the_index() -> None:
    with pytest.raises(PreflightError) as info:
        build.check_wheel_against_driver("13.0", 12080)
    assert "CUDA 13.0" in info.value.message and "12.8" in info.value.message
    assert "https://download.pytorch.org/whl/cu128" in (info.value.fix or "")


def test_the_runner_names_the_tag_the_build_makes_for_the_driver() -> None:
    assert images.driver_cuda_version(FakeNvml(cuda_driver_version=12080)) == 12080
    assert images.driver_cuda_version(FakeNvml(init_error=9)) is None
    assert images.driver_image_major(12080) == 12
    assert images.driver_image_major(14010) == 13  # no cu14x torch: the build makes -cuda13


def test_the_runner_falls_back_to_an_older_cuda_image_that_is_here() -> None:
    here = {images.default_image("pytorch", cuda=12)}
    assert images.present_for_driver("pytorch", 13, here.__contains__) == next(iter(here))
    assert images.present_for_driver("pytorch", 12, set().__contains__) is None


# ------------------------------------------------------------------ 2: a C compiler


def _final_stage(text: str) -> str:
    return text[text.rindex("\nFROM ") :]


def test_cuda_images_check_for_a_c_compiler_in_the_final_stage() -> None:
    final = _final_stage(build.dockerfile_text())
    assert 'ARG C_COMPILER=""' in final
    assert 'command -v "$C_COMPILER"' in final
    cuda, cpu = Variant("pytorch", False), Variant("vllm", True)
    assert build.build_args(cuda, "b", [])["C_COMPILER"] == "gcc"
    assert build.build_args(Variant("vllm", False), "b", [])["C_COMPILER"] == "gcc"
    assert build.build_args(cpu, "b", ["libnuma1"]) == {
        "BASE_IMAGE": "b",
        "SYSTEM_PACKAGES": "libnuma1",
        "C_COMPILER": "",
    }
    assert cuda.system_tools == {"gcc": "gcc libc6-dev"}
    assert "slim" not in build.DEFAULT_CUDA_BASE  # the full python image has gcc: offline build


# ------------------------------------------------------------------ 3: a named container user


def test_container_environment_names_the_user_and_writable_caches(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from llem_nb.runners.docker.runner import DockerRunner
    from llem_nb.runners.exchange import Exchange

    config = ExperimentConfig(model=str(tiny_model_dir), gpus=0)
    exchange = Exchange(config, cycle=0, study="s")
    try:
        env = DockerRunner("img:1", user="").container_kwargs(config, exchange)["environment"]
    finally:
        exchange.cleanup()
    assert {k: env[k] for k in USER_ENV} == USER_ENV
    assert env["USER"] == "llem" and env["HOME"] == "/tmp"
    assert env["TORCHINDUCTOR_CACHE_DIR"].startswith("/tmp/")
    _, gpu_env = gpu_requests("all")
    assert gpu_env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"


UNKNOWN_UID = 54321
GETUSER = "import getpass; print(getpass.getuser())"


SYSTEM_PYTHON = "/usr/bin/python3"
"""An interpreter any uid may run (this venv's may sit under root's home)."""


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
    reason="needs root (to run as a uid with no passwd entry) and /usr/bin/python3",
)
def test_getuser_works_as_an_unknown_uid_with_the_container_environment() -> None:
    """What Inductor does in the container, here as a uid /etc/passwd does not know."""
    import pwd

    with pytest.raises(KeyError):
        pwd.getpwuid(UNKNOWN_UID)
    bare = {"PATH": os.environ.get("PATH", "/usr/bin")}

    def getuser(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SYSTEM_PYTHON, "-c", GETUSER],
            env=env,
            cwd="/",
            user=UNKNOWN_UID,
            group=UNKNOWN_UID,
            capture_output=True,
            text=True,
        )

    assert getuser(bare).returncode != 0  # the bug: no name for this uid
    named = getuser({**bare, **USER_ENV})
    assert named.returncode == 0, named.stderr
    assert named.stdout.strip() == "llem"
