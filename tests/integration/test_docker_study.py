"""Studies, ``run_experiment`` and the CLI with the Docker runner, against a real dockerd."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from llem_nb.cli import main
from llem_nb.config.plugins import register_backend
from llem_nb.errors import PreflightError
from llem_nb.study.experiment import run_experiment
from llem_nb.study.study import Study

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine_env(docker_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """DOCKER_HOST points at the test engine, as a user's shell would."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    return docker_engine


@pytest.fixture
def two_backends(fake_backend: str) -> list[str]:
    register_backend("fake2", "llem_nb.testing:FakeBackend")
    return [fake_backend, "fake2"]


def study(backends: list[str]) -> Study:
    return Study(
        "docker-study",
        model="none",
        gpus=0,
        n_prompts=2,
        batch_size=2,
        max_output_tokens=2,
        warmup__runs=0,
        baseline__seconds=0,
        energy__source="none",
    ).sweep(backend=backends)


def test_each_backend_of_a_study_runs_in_its_own_container(
    engine_env: Engine, two_backends: list[str], tmp_path: Path
) -> None:
    image = f"docker:{engine_env.image}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = study(two_backends).run(
            runner={b: image for b in two_backends}, results_dir=tmp_path, progress=False
        )
    df = res.df
    assert sorted(df["backend"]) == sorted(two_backends)
    assert set(df["status"]) == {"ok"}
    assert set(df["runner"]) == {"docker"} and set(df["image"]) == {engine_env.image}


def test_a_multi_backend_study_stops_before_running_when_docker_cannot_run_it(
    engine_env: Engine, two_backends: list[str], tmp_path: Path
) -> None:
    """CPU experiments go to Docker without the toolkit, but these backends have no image
    here; GPU experiments would need the toolkit this engine lacks. Either way: stop first."""
    with pytest.raises(PreflightError, match="not on this machine: ghcr.io/llem-nb/fake") as info:
        study(two_backends).run(results_dir=tmp_path / "out", progress=False)
    assert "docker:<image>" in info.value.fix
    with pytest.raises(PreflightError, match="ask for GPUs") as gpu:
        study(two_backends).add(backend=two_backends[0], gpus=1).run(
            results_dir=tmp_path / "out", progress=False
        )
    assert "NVIDIA Container Toolkit" in gpu.value.fix
    assert not (tmp_path / "out").exists()


def test_mixed_runners_are_honoured_with_a_warning(
    engine_env: Engine, two_backends: list[str], tmp_path: Path
) -> None:
    first, second = two_backends
    runners = {first: "local", second: f"docker:{engine_env.image}"}
    with pytest.warns(UserWarning, match=f"mixed runners.*{first}=local"):
        res = study(two_backends).run(runner=runners, results_dir=tmp_path, progress=False)
    by_backend = dict(zip(res.df["backend"], res.df["runner"], strict=True))
    assert by_backend == {first: "local", second: "docker"}


def test_run_experiment_honours_the_env_layer(
    engine_env: Engine, fake_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLEM_RUNNER_FAKE", f"docker:{engine_env.image}")
    result = run_experiment(
        model="none", backend=fake_backend, gpus=0, n_prompts=2, max_output_tokens=2,
        warmup={"runs": 0}, baseline={"seconds": 0}, energy={"source": "none"},
    )  # fmt: skip
    assert (result.status, result.runner, result.runner_source) == ("ok", "docker", "env")
    assert result.image == engine_env.image


def test_cli_lists_images_and_reports_docker_in_env(
    engine_env: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from llem_nb.runners.docker.probe import probe

    probe(refresh=True)
    assert main(["images", "list"]) == 0
    listing = capsys.readouterr().out
    assert engine_env.image in listing and "present" in listing
    assert main(["env"]) == 0
    env = capsys.readouterr().out
    assert "docker: daemon" in env and engine_env.host in env
    assert "docker: nvidia toolkit no" in " ".join(env.split())
