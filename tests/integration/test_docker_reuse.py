"""One container per loaded model (``reuse="auto"``) against a real dockerd: points sharing a
model run in one container, a crash fails only its point, and nothing is left running."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from llem_nb.runners.docker.reuse import REUSE_LABEL
from llem_nb.runners.docker.runner import EXPERIMENT_LABEL, DockerRunner
from llem_nb.study.study import Study
from llem_nb.testing.backend import CRASH_EXIT_CODE

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "exchange"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def created_since(engine: Engine, since: float) -> list[dict[str, Any]]:
    """The runner's containers the daemon created since ``since`` (its event log)."""
    events = engine.client.events(
        since=int(since),
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "create", "label": EXPERIMENT_LABEL},
    )
    return [e for e in events if e.get("time", 0) >= int(since)]


def tiny_study(model: Path, reuse: str) -> Study:
    return (
        Study(
            f"docker-reuse-{reuse}",
            model=str(model),
            precision="fp32",
            gpus=0,
            n_prompts=2,
            max_input_tokens=32,
            max_output_tokens=4,
            warmup__runs=0,
            baseline__seconds=0,
            energy__source="none",
        )
        .sweep(batch_size=[1, 2])
        .reuse(reuse)
    )


def test_two_points_sharing_a_model_run_in_one_container(
    docker_engine: Engine, tiny_model_dir: Path, exchange_root: Path, tmp_path: Path
) -> None:
    runner = DockerRunner(docker_engine.image, base_url=docker_engine.host, timeout_s=300)
    time.sleep(1.0)  # events are stamped in whole seconds: none of an earlier test's
    t0 = time.time()
    res = tiny_study(tiny_model_dir, "auto").run(
        runner=runner, results_dir=tmp_path / "auto", progress=False
    )
    assert [r.status for r in res.results] == ["ok", "ok"]
    assert [r.model_reused for r in res.results] == [False, True]
    created = created_since(docker_engine, t0)
    assert len(created) == 1
    assert created[0]["Actor"]["Attributes"][REUSE_LABEL] == "1"
    assert docker_engine.containers_of() == []
    assert list(exchange_root.iterdir()) == []

    time.sleep(1.0)
    t1 = time.time()
    never = tiny_study(tiny_model_dir, "never").run(
        runner=DockerRunner(docker_engine.image, base_url=docker_engine.host, timeout_s=300),
        results_dir=tmp_path / "never",
        progress=False,
    )
    assert [r.status for r in never.results] == ["ok", "ok"]
    assert [r.model_reused for r in never.results] == [False, False]
    assert len(created_since(docker_engine, t1)) == 2
    assert docker_engine.containers_of() == []


def test_a_crash_fails_its_point_and_the_next_runs_in_a_fresh_container(
    docker_engine: Engine, fake_backend: str, exchange_root: Path, tmp_path: Path
) -> None:
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    (crash_dir / "once").write_text("")
    runner = DockerRunner(
        docker_engine.image,
        base_url=docker_engine.host,
        timeout_s=300,
        environment={"LLEM_FAKE_CRASH_ONCE": "/run/crash/once"},
        volumes={str(crash_dir): {"bind": "/run/crash", "mode": "rw"}},
    )
    study = Study(
        "docker-reuse-crash",
        model="none",
        backend="fake",
        gpus=0,
        n_prompts=2,
        max_output_tokens=2,
        warmup__runs=0,
        baseline__seconds=0,
        energy__source="none",
    ).sweep(batch_size=[1, 2, 4])
    time.sleep(1.0)
    t0 = time.time()
    res = study.run(runner=runner, results_dir=tmp_path / "results", progress=False)
    assert [r.status for r in res.results] == ["failed", "ok", "ok"]
    failed = res.results[0]
    assert failed.error is not None
    assert str(CRASH_EXIT_CODE) in failed.error.message
    assert [r.model_reused for r in res.results[1:]] == [False, True]
    assert len(created_since(docker_engine, t0)) == 2
    assert not (crash_dir / "once").exists()
    assert docker_engine.containers_of() == []
    kept = [p for p in exchange_root.rglob("*_config.json")]
    assert [p.parent.parent.parent for p in kept] == [exchange_root]
