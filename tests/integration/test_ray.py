"""The Ray runner against a real local Ray cluster (2 CPUs, no dashboard)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import ray

from llem_nb.errors import PreflightError
from llem_nb.results.frame import load_results
from llem_nb.run.journal import replay
from llem_nb.runners.ray import RayRunner
from llem_nb.study.study import Study

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration

DETERMINISTIC = [
    "study", "experiment_id", "cycle", "status", "model", "backend", "precision",
    "batch_size", "n_prompts", "max_input_tokens", "max_output_tokens", "input_tokens",
    "output_tokens", "energy_source", "gpu_count",
]  # fmt: skip
MEASURED = ["window_s", "throughput_output_tok_s", "ttft_ms_p50", "energy_per_output_token_j"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _tiny_study(model: Path, name: str = "ray-tiny") -> Study:
    return Study(
        name, model=str(model), precision="fp32", gpus=0, n_prompts=4, max_input_tokens=32,
        warmup={"runs": 0}, energy={"source": "estimate"}, pytorch={"num_threads": 1},
    ).sweep(batch_size=[1, 2], max_output_tokens=[3, 6])  # fmt: skip


def test_ray_study_equals_a_local_run(cluster: None, tiny_model_dir: Path, tmp_path: Path) -> None:
    local = _tiny_study(tiny_model_dir).run(
        runner="local", results_dir=tmp_path / "l", progress=False
    )
    remote = _tiny_study(tiny_model_dir).run(
        runner="ray", results_dir=tmp_path / "r", progress=False
    )
    assert len(remote.results) == 4 and not remote.failed
    a, b = local.df, remote.df
    assert set(b["runner"]) == {"ray"} and set(a["runner"]) == {"local"}
    pd.testing.assert_frame_equal(
        a[DETERMINISTIC].reset_index(drop=True), b[DETERMINISTIC].reset_index(drop=True)
    )
    assert b[MEASURED].notna().all().all()
    assert list(a.columns) == list(b.columns)
    assert replay(remote.dir / "journal.jsonl").counts().get("finished") == 4


def test_task_that_raises_is_a_failed_row(
    cluster: None, fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLEM_FAKE_FAIL", "generate")
    study = Study("ray-fail", model="m", backend=fake_backend, n_prompts=2, max_output_tokens=2,
                  energy={"source": "none"}, warmup={"runs": 0}).sweep(batch_size=[1, 2])  # fmt: skip
    res = study.run(runner="ray", results_dir=tmp_path, progress=False)
    assert len(res.failed) == 2
    for result in res.failed:
        assert result.error is not None
        assert result.error.type == "BackendError"
        assert "asked to fail in generate" in result.error.message
        assert "Traceback" in (result.error.traceback or "")
    assert len(load_results(res.dir)) == 2


def _kill_when_written(pidfile: Path, times: int) -> threading.Thread:
    def killer() -> None:
        killed: set[int] = set()
        deadline = time.monotonic() + 90
        while len(killed) < times and time.monotonic() < deadline:
            pids = [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []
            for pid in pids:
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("kills", "status"), [(1, "ok"), (2, "failed")])
def test_worker_killed_mid_task_is_retried_once(
    cluster: None, fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    kills: int, status: str,
) -> None:  # fmt: skip
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("LLEM_FAKE_PIDFILE", str(pidfile))
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0.5")
    study = Study(f"ray-kill{kills}", model="m", backend=fake_backend, n_prompts=1,
                  max_output_tokens=6, energy={"source": "none"}, warmup={"runs": 0})  # fmt: skip
    killer = _kill_when_written(pidfile, kills)
    res = study.run(runner="ray", results_dir=tmp_path / "out", progress=False)
    killer.join(timeout=5)
    assert len(pidfile.read_text().split()) == kills + (status == "ok")
    assert [r.status for r in res.results] == [status]
    if status == "failed":
        error = res.results[0].error
        assert error is not None and error.category == "crashed"
        assert "worker died" in error.message


def test_gpu_study_on_a_gpu_less_cluster_fails_before_running(
    cluster: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    study = _tiny_study(tiny_model_dir, "ray-gpu").sweep(gpus=[1])
    with pytest.raises(PreflightError) as info:
        study.run(runner="ray", results_dir=tmp_path, progress=False)
    message = str(info.value)
    assert "1 GPU(s) per experiment" in message and "the cluster has 0" in message
    assert "CPU=2" in message
    assert not list(tmp_path.iterdir())


def test_stop_cancels_tasks_and_resume_finishes(
    cluster: None, fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0.3")
    study = Study("ray-stop", model="m", backend=fake_backend, n_prompts=1, max_output_tokens=20,
                  energy={"source": "none"}, warmup={"runs": 0}).sweep(batch_size=[1, 2, 3, 4])  # fmt: skip
    handle = study.start(runner="ray", results_dir=tmp_path, progress=False)
    deadline = time.monotonic() + 60
    while handle.progress.running is None and time.monotonic() < deadline:
        time.sleep(0.05)
    handle.stop()
    partial = handle.wait(timeout=120)
    assert partial.interrupted
    done = {(r.experiment_id, r.cycle) for r in partial.results if r.status == "ok"}
    assert len(done) < 4
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0")
    resumed = Study.resume(partial.dir, runner="ray", progress=False)
    again = {(r.experiment_id, r.cycle) for r in resumed.results}
    assert not (again & done)
    assert len(load_results(partial.dir)) == 4


def test_runner_values_parse() -> None:
    from llem_nb.runners.base import make_runner

    runner = make_runner("ray:127.0.0.1:6379")
    assert isinstance(runner, RayRunner) and runner.address == "127.0.0.1:6379"
    docker = make_runner("ray+docker:llem/cpu:1")
    assert isinstance(docker, RayRunner) and docker.docker and docker.image == "llem/cpu:1"
    assert docker.metadata()["runner"] == "ray+docker"


def test_ray_plus_docker_runs_each_task_in_a_container(
    cluster: None, docker_engine: Engine, fake_backend: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    study = Study("ray-docker", model="m", backend=fake_backend, gpus=0, n_prompts=2,
                  max_output_tokens=2, energy={"source": "none"}, warmup={"runs": 0},
                  baseline={"seconds": 0}).sweep(batch_size=[1, 2])  # fmt: skip
    res = study.run(
        runner=f"ray+docker:{docker_engine.image}", results_dir=tmp_path, progress=False
    )
    assert [r.status for r in res.results] == ["ok", "ok"], [r.error for r in res.results]
    for result in res.results:
        assert result.runner == "ray+docker"
        assert result.image == docker_engine.image
        assert result.image_digest and result.image_digest.startswith("sha256:")
        assert result.environment["in_container"] is True
    assert set(load_results(res.dir)["runner"]) == {"ray+docker"}
