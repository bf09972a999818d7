"""The wheel: every module of the tree, the package data, ``images/`` as ``llem_nb.images``
(so ``pip install 'llem_nb[docker]'`` alone can build an image) and the license file."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("llem_nb-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_ships_images_as_llem_nb_images(wheel_names: set[str]) -> None:
    assert {"llem_nb/images/Dockerfile", "llem_nb/images/README.md"} <= wheel_names
    assert "llem_nb/images/__init__.py" in wheel_names
    assert not any(name.startswith("images/") for name in wheel_names)
    assert "llem_nb/runners/docker/Dockerfile" not in wheel_names


def test_the_wheel_holds_every_module_and_data_file(wheel_names: set[str]) -> None:
    package = ROOT / "llem_nb"
    modules = {
        str(p.relative_to(ROOT)) for p in package.rglob("*.py") if "__pycache__" not in p.parts
    }
    assert modules - wheel_names == set()  # a subpackage missing from pyproject's list
    data = {
        "llem_nb/py.typed",
        "llem_nb/backends/datasets/builtin.jsonl",
        "llem_nb/data/mlenergy_v3_chat.csv",
        "llem_nb/runners/entrypoint.py",
    }
    assert data <= wheel_names


def test_the_wheel_carries_the_apache_license(wheel_names: set[str]) -> None:
    licenses = [n for n in wheel_names if n.endswith("/LICENSE") and ".dist-info/" in n]
    assert len(licenses) == 1
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert "Version 2.0" in (ROOT / "LICENSE").read_text()


def test_a_source_checkout_finds_the_dockerfile_in_images() -> None:
    from llem_nb.runners.docker.build import dockerfile_path, dockerfile_text

    assert dockerfile_path().parent.name == "images"
    assert dockerfile_text() == (ROOT / "images" / "Dockerfile").read_text()
