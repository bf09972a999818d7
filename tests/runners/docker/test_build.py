"""Image builds without a daemon: what goes into the wheelhouse and the build context.

The daemon side (a real build, reuse, save/load) is in tests/integration/test_docker_images.py.
"""

from __future__ import annotations

import importlib.metadata
import tarfile
import zipfile
from pathlib import Path

import pytest

from llem_nb._version import __version__
from llem_nb.runners.docker import build
from llem_nb.runners.docker.wheelhouse import (
    TORCH_VERSION,
    VLLM_CPU,
    Variant,
    Wheelhouse,
    requirements,
    wheel_name,
)


def test_pytorch_images_pin_our_dependencies_to_this_machines_versions() -> None:
    cpu = requirements(Variant("pytorch", True))
    assert cpu[0] == f"torch=={TORCH_VERSION}"
    pinned = dict(r.split("==", 1) for r in cpu[1:])
    for name in ("pydantic", "transformers", "pyyaml", "tokenizers"):
        assert pinned[name] == importlib.metadata.version(name)
    assert "torch" not in pinned
    assert "nvidia-ml-py" in pinned  # GPU energy inside the container
    assert "matplotlib" not in pinned  # analysis only: never imported by an experiment
    cuda = requirements(Variant("pytorch", False))
    assert cuda[0] == f"torch==={TORCH_VERSION}"  # never the local +cpu build
    assert Variant("pytorch", True).drops == () and not Variant("pytorch", False).system_libraries


def test_the_vllm_cpu_image_takes_vllm_cpu_with_our_torch_and_leaves_out_what_breaks_it() -> None:
    variant = Variant("vllm", True)
    reqs = requirements(variant)
    assert reqs[:2] == [VLLM_CPU, f"torch=={TORCH_VERSION}"]
    assert not any(r.startswith("transformers") for r in reqs)
    assert any(r.startswith("pydantic>=") for r in reqs)  # a range: vLLM constrains its own
    assert any(r.startswith("nvidia-ml-py") for r in reqs)
    assert not any(r.startswith("matplotlib") for r in reqs)
    assert set(variant.drops) == {"torchvision", "torchaudio", "torchcodec"}
    assert variant.system_libraries == {"libnuma.so.1": "libnuma1"}
    assert requirements(Variant("vllm", False))[0] == "vllm"


def test_an_unknown_backend_has_no_image() -> None:
    from llem_nb.errors import ConfigError

    with pytest.raises(ConfigError, match="known: pytorch, vllm"):
        Variant("tensorrt", True).engine_requirements()


def fake_wheel(directory: Path, name: str, files: dict[str, str] | None = None) -> str:
    with zipfile.ZipFile(directory / name, "w") as zf:
        for path, text in (files or {"x.py": ""}).items():
            zf.writestr(path, text)
    return name


def test_the_wheelhouse_reads_torch_and_cuda_versions_and_leaves_out_pip_and_drops(
    tmp_path: Path,
) -> None:
    torch = fake_wheel(
        tmp_path,
        "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        {"torch/version.py": "__version__ = '2.13.0'\ncuda: Optional[str] = '13.0'\n"},
    )
    names = [
        torch,
        fake_wheel(tmp_path, "pip-26.3-py3-none-any.whl"),
        fake_wheel(tmp_path, "torchvision-0.28.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
        fake_wheel(tmp_path, "Jinja2-3.1.6-py3-none-any.whl"),
    ]
    house = Wheelhouse(tmp_path, tuple(names), names[1])
    assert house.torch_cuda() == "13.0" and house.version_of("torch") == "2.13.0"
    assert house.install_list(("torchvision",)) == [torch, names[3]]
    assert wheel_name(names[3]) == "jinja2"
    assert build._tag_for(Variant("pytorch", False), house).endswith(f"{__version__}-cuda13")
    cpu_torch = fake_wheel(
        tmp_path,
        "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl",
        {"torch/version.py": "cuda = None\n"},
    )
    assert Wheelhouse(tmp_path, (cpu_torch,), "").torch_cuda() is None


def test_the_build_context_is_the_installed_package_frozen_at_its_version(tmp_path: Path) -> None:
    wheels = [fake_wheel(tmp_path, "six-1.17.0-py2.py3-none-any.whl")]
    pip = fake_wheel(tmp_path, "pip-26.3-py3-none-any.whl")
    house = Wheelhouse(tmp_path, (*wheels, pip), pip)
    root = tmp_path / "context"
    root.mkdir()
    labels = {"org.llem-nb.version": __version__, "org.llem-nb.torch": "2.13.0+cpu"}
    build._write_context(root, house, wheels, labels)
    dockerfile = (root / "Dockerfile").read_text()
    assert dockerfile.startswith(build.dockerfile_text().rstrip())
    assert dockerfile.rstrip().endswith(
        f'LABEL org.llem-nb.torch="2.13.0+cpu" org.llem-nb.version="{__version__}"'
    )
    assert (root / "wheels" / "install.txt").read_text() == "./six-1.17.0-py2.py3-none-any.whl\n"
    assert (root / "wheels" / "pip-wheel.txt").read_text() == f"/tmp/wheels/{pip}"
    src = root / "src" / "llem_nb"
    assert (src / "runners" / "entrypoint.py").is_file()
    assert (src / "backends" / "datasets" / "builtin.jsonl").is_file()
    assert not list(src.rglob("__pycache__"))
    frozen = (src / "_version.py").read_text()  # the literal travels with the package
    assert f'__version__ = "{__version__}"' in frozen
    assert frozen == (Path(build.PACKAGE) / "_version.py").read_text()
    meta = root / "src" / f"llem_nb-{__version__}.dist-info" / "METADATA"
    assert f"Version: {__version__}" in meta.read_text()
    archive = tmp_path / "context.tar"
    build._tar(root, archive)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert {m.uid for m in members} == {0} and {m.mtime for m in members} == {0}
