"""notebooks/03-docker-runner.ipynb with a usable Docker: its sweep really runs in containers.

test_notebooks.py runs every notebook on a machine as CI finds it (no daemon at the
default socket: the notebook explains why and runs locally); this runs the Docker
notebook again with DOCKER_HOST pointing at the test engine.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)
from .test_notebooks import TEST_PARAMETERS, execute, parametrise

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "03-docker-runner.ipynb"


def test_docker_notebook_runs_its_sweep_in_containers(
    docker_engine: Engine,
    tmp_path: Path,
) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parametrise(nb, TEST_PARAMETERS)
    execute(nb, tmp_path, HF_HUB_OFFLINE="1", DOCKER_HOST=docker_engine.host)
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "\n".join(
        str(out.get("text", "")) + "".join(
            str(out.get("data", {}).get(kind, "")) for kind in ("text/plain", "text/markdown")
        )
        for out in outputs
    )
    assert f"CPU containers from `{docker_engine.image}`" in text
    assert "Docker daemon : yes" in text and "NVIDIA toolkit: no" in text
    assert "ImagePullError" in text and "docker pull llem-nb/never-built:0" in text
    assert any("image/png" in out.get("data", {}) for out in outputs)
    assert f"{docker_engine.image} is here" in text  # ll.images.ensure before the run
    assert f"ImagePullError → {docker_engine.image} could not be pulled" in text
    assert "fix: build it here: llem-nb images build pytorch --cpu" in text

    import llem_nb as ll

    (study_dir,) = (tmp_path / "results").iterdir()
    df = ll.load_results(study_dir)
    assert set(df["status"]) == {"ok"} and set(df["runner"]) == {"docker"}
    assert set(df["image"]) == {docker_engine.image}
    assert sorted(df["model_reused"]) == [False, True]  # both points in one container
