"""The top level: one ``__all__``, every name in it importable, nothing else public there."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import types

import pytest

import llem_nb


@pytest.mark.parametrize("name", llem_nb.__all__)
def test_every_public_name_imports(name: str) -> None:
    assert getattr(llem_nb, name) is not None


def test_nothing_else_is_public_at_the_top_level() -> None:
    """A fresh interpreter: after touching every public name, the module's public globals
    are those names and the subpackages they loaded, nothing else."""
    code = (
        "import llem_nb, types\n"
        "[getattr(llem_nb, n) for n in llem_nb.__all__]\n"
        "extra = sorted(n for n, v in vars(llem_nb).items() if not n.startswith('_')\n"
        "               and n not in llem_nb.__all__ and not isinstance(v, types.ModuleType))\n"
        "print(extra)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert sorted(dir(llem_nb)) == sorted(llem_nb.__all__)
    assert len(set(llem_nb.__all__)) == len(llem_nb.__all__)


def test_subpackages_are_the_only_modules_left_on_the_package() -> None:
    for name, value in vars(llem_nb).items():
        if isinstance(value, types.ModuleType) and not name.startswith("_"):
            assert value.__name__ == f"llem_nb.{name}"


def test_docker_errors_live_under_the_docker_runner_and_are_exported_once() -> None:
    module = importlib.import_module("llem_nb.runners.docker.errors")
    for name in ("DockerError", "ImagePullError", "GPUAccessError", "OOMError",
                 "ContainerTimeoutError", "DockerPermissionError", "ContainerError"):  # fmt: skip
        cls = getattr(llem_nb, name)
        assert cls is getattr(module, name) and cls.__module__ == module.__name__
        assert issubclass(cls, llem_nb.LlemError)


def test_version_is_the_installed_metadata_without_reading_it_at_import() -> None:
    assert llem_nb.__version__ == importlib.metadata.version("llem_nb")
    code = "import sys, llem_nb; print('importlib.metadata' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"  # pyproject reads llem_nb._version, not the reverse


def test_the_unknown_name_error_names_it() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        llem_nb.nope  # noqa: B018
