"""Container faults inside a study, against a real dockerd: OOM, a missing image, a GPU
request on a GPU-less host, and a stop that kills the container. For each: the rest of the
study completes, the journal replays, no finished result changes, and resume runs exactly
the missing (hash, cycle) pairs.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import pytest
from tests.support.faultkit import StartedLog, all_pairs, journal_states, loads_cleanly, result_files

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import PreflightError
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import Runner
from llem_nb.runners.docker.runner import DockerRunner
from llem_nb.study.study import Study

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration
MISSING_IMAGE = "127.0.0.1:9/llem-nb/not-built:0"


class ByBatchSize(Runner):
    """Real Docker runners, one per batch size (a study-wide runner cannot differ per point)."""

    name = "docker"

    def __init__(self, routes: dict[int, DockerRunner], default: DockerRunner) -> None:
        super().__init__(source="argument")
        self.routes, self.default = routes, default
        self._current: DockerRunner | None = None

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        self._current = self.routes.get(config.batch_size, self.default)
        try:
            return self._current.run(config, cycle=cycle, study=study)
        finally:
            self._current = None

    def cancel(self) -> None:
        if self._current is not None:
            self._current.cancel()


@pytest.fixture
def exchange_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "exchange"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _study(name: str = "docker-faults", max_output_tokens: int = 2) -> Study:
    return Study(
        name,
        model="none",
        backend="fake",
        gpus=0,
        n_prompts=2,
        max_output_tokens=max_output_tokens,
        warmup__runs=0,
        baseline__seconds=0,
        energy__source="none",
    )


def test_oom_missing_image_and_gpu_request_fail_alone(
    docker_engine: Engine, fake_backend: str, exchange_root: Path, tmp_path: Path
) -> None:
    good = DockerRunner(docker_engine.image, base_url=docker_engine.host, timeout_s=300)
    oom = DockerRunner(
        docker_engine.image,
        base_url=docker_engine.host,
        memory_limit="96m",
        environment={"LLEM_FAKE_ALLOC_MB": "512"},
    )
    missing = DockerRunner(MISSING_IMAGE, base_url=docker_engine.host)
    study = _study().sweep(batch_size=[1, 2, 3]).add(batch_size=4, gpus=1)
    res = study.run(
        runner=ByBatchSize({2: oom, 3: missing}, good),
        results_dir=tmp_path / "results",
        progress=False,
    )
    by_size = {r.config["batch_size"]: r for r in res.results}
    assert by_size[1].status == "ok"
    categories = {b: r.error.category for b, r in by_size.items() if r.error is not None}
    assert categories == {2: "oom", 3: "image", 4: "gpu"}
    states = journal_states(res.dir)
    assert sorted(states.values()) == ["failed", "failed", "failed", "finished"]
    assert loads_cleanly(res.dir) == 4
    before = result_files(res.dir)
    ok_key = (by_size[1].experiment_id, 0)

    log = StartedLog()
    Study.resume(res.dir, runner=good, progress=False, callbacks=[log])
    assert log.started == [] and result_files(res.dir) == before

    with pytest.raises(PreflightError, match="asks for GPUs"):
        Study.resume(res.dir, runner=good, progress=False, retry_failed=True)
    assert result_files(res.dir) == before and not list(res.dir.glob("*.failed-*"))

    log = StartedLog()
    Study.resume(
        res.dir, runner=ByBatchSize({}, good), progress=False, callbacks=[log], retry_failed=True
    )
    assert sorted(log.started) == sorted(all_pairs(study) - {ok_key})
    after = result_files(res.dir)
    assert after[ok_key] == before[ok_key]
    statuses = {k: json.loads(v)["status"] for k, v in after.items()}
    assert sorted(statuses.values()) == ["failed", "ok", "ok", "ok"]
    for mine in (good, oom, missing):  # passed in, so not closed by the study
        mine.close()
    assert docker_engine.containers_of() == []


def test_stop_kills_the_container_and_resume_reruns_it(
    docker_engine: Engine, fake_backend: str, exchange_root: Path, tmp_path: Path
) -> None:
    slow = DockerRunner(
        docker_engine.image,
        base_url=docker_engine.host,
        environment={"LLEM_FAKE_STEP_S": "0.05"},
        timeout_s=600,
    )
    study = _study("docker-stop", max_output_tokens=400).sweep(batch_size=[1, 2])
    handle = study.start(runner=slow, results_dir=tmp_path / "results")
    experiment_id = study.points[0].config.experiment_id
    for _ in range(1200):
        if docker_engine.containers_of(experiment_id) or handle.done:
            break
        threading.Event().wait(0.05)
    handle.stop()
    res = handle.wait(timeout=120)
    assert res.interrupted and res.results == []
    assert docker_engine.containers_of(experiment_id) == []
    assert sorted(journal_states(res.dir).values()) == ["interrupted", "queued"]
    fast = DockerRunner(docker_engine.image, base_url=docker_engine.host, timeout_s=300)
    log = StartedLog()
    done = Study.resume(res.dir, runner=fast, progress=False, callbacks=[log])
    assert sorted(log.started) == sorted(all_pairs(study))
    assert [r.status for r in done.results] == ["ok", "ok"]
