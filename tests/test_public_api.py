"""The top level: one ``__all__``, every name in it importable, nothing else public there."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import types
from pathlib import Path

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


DOCKER_NAMES = (
    "DockerRunner", "DockerError", "ImagePullError", "GPUAccessError", "OOMError",
    "ContainerTimeoutError", "DockerPermissionError", "ContainerError", "docker_status",
    "DockerStatus",
    # LLenergyMeasure's names for the same errors
    "DockerImagePullError", "DockerGPUAccessError", "DockerOOMError", "DockerTimeoutError",
    "DockerContainerError",
    # getting the images a study needs
    "ensure",
)  # fmt: skip


def test_docker_names_live_under_the_docker_runner_not_at_the_top() -> None:
    docker = importlib.import_module("llem_nb.runners.docker")
    assert sorted(docker.__all__) == sorted(DOCKER_NAMES)
    errors = importlib.import_module("llem_nb.runners.docker.errors")
    for name in DOCKER_NAMES:
        assert name not in llem_nb.__all__ and not hasattr(llem_nb, name)
        assert getattr(docker, name) is not None
    for name in DOCKER_NAMES[1:8]:
        cls = getattr(docker, name)
        assert cls is getattr(errors, name) and issubclass(cls, llem_nb.LlemError)


def test_the_top_keeps_the_verbs_the_result_types_and_the_error_root() -> None:
    for name in ("Study", "run_experiment", "load_results", "compare", "recommend", "report",
                 "ExperimentResult", "StudyResult", "LlemError", "LlemWarning"):  # fmt: skip
        assert name in llem_nb.__all__
    assert all(issubclass(getattr(llem_nb, n), llem_nb.LlemError) for n in llem_nb.__all__
               if n.endswith("Error"))  # fmt: skip


def test_all_is_built_from_the_one_table() -> None:
    """Each public name is written once in llem_nb/__init__.py: in ``_PUBLIC``."""
    source = Path(llem_nb.__file__).read_text()
    assert sorted(llem_nb.__all__) == sorted([*llem_nb._PUBLIC, "__version__"])
    for name in llem_nb._PUBLIC:
        assert source.count(f'"{name}"') == 1, f"{name} is written more than once"


IMPORT_ONLY = """
import json, os, sys
before_env = dict(os.environ)
before_modules = set(sys.modules)
import llem_nb
print(json.dumps({
    "env_changed": dict(os.environ) != before_env,
    "llem_modules": sorted(m for m in set(sys.modules) - before_modules if "llem_nb" in m),
}))
"""


def test_importing_llem_nb_has_no_side_effects() -> None:
    """No global registered or wired, nothing written to the environment, no layer loaded."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ONLY], capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout)
    assert found == {"env_changed": False, "llem_modules": ["llem_nb", "llem_nb._version"]}


def test_the_live_widget_is_offered_to_runs_without_import_time_wiring() -> None:
    from llem_nb.run.progress import _VIEWS, NOTEBOOK_VIEW, _load_view
    from llem_nb.widgets.progress import notebook_progress

    assert NOTEBOOK_VIEW in _VIEWS and _load_view(NOTEBOOK_VIEW) is notebook_progress


def test_version_is_the_installed_metadata_without_reading_it_at_import() -> None:
    assert llem_nb.__version__ == importlib.metadata.version("llem_nb")
    code = "import sys, llem_nb; print('importlib.metadata' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"  # pyproject reads llem_nb._version, not the reverse


def test_the_unknown_name_error_names_it() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        llem_nb.nope  # noqa: B018
