"""``run_experiment``: one experiment through the study's own plan (runner resolution, the
runner's preflight, the backend's checks), raising when it fails."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import register_runner
from llem_nb.errors import BackendError, PreflightError
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
from llem_nb.runners.base import Runner
from llem_nb.runners.local import LocalRunner
from llem_nb.study.experiment import run_experiment
from tests.support.fake import fake_fields


class Picky(LocalRunner):
    """A runner whose preflight refuses batch size 3; counts the experiments it ran."""

    name = "picky"
    ran: ClassVar[list[str]] = []

    def preflight(self, config: ExperimentConfig) -> None:
        if config.batch_size == 3:
            raise PreflightError("picky refuses batch size 3", fix="use another batch size")

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        self.ran.append(config.experiment_id)
        return super()._execute(config, cycle=cycle, study=study)


def test_the_runner_preflight_runs_before_the_experiment(fake_backend: str) -> None:
    register_runner("picky", Picky, child_processes=False)
    Picky.ran.clear()
    with pytest.raises(PreflightError, match="batch size 3"):
        run_experiment(runner="picky", **fake_fields(fake_backend, batch_size=3))
    assert Picky.ran == []
    result = run_experiment(runner="picky", **fake_fields(fake_backend, batch_size=2))
    assert (result.status, result.runner, result.runner_source) == ("ok", "picky", "argument")
    assert Picky.ran == [result.experiment_id]


def test_a_runner_object_and_a_results_dir(fake_backend: str, tmp_path: Path) -> None:
    runner = LocalRunner(source="argument")
    result = run_experiment(runner=runner, results_dir=tmp_path, **fake_fields(fake_backend))
    assert result.status == "ok" and result.runner == "local"
    (path,) = ResultStore(tmp_path).iter_paths()
    assert ExperimentResult.model_validate_json(path.read_text()).config_hash == result.config_hash


def test_a_failed_experiment_raises(fake_backend: str) -> None:
    from llem_nb.testing import FakeBackend

    FakeBackend.fail_on = "generate"
    try:
        with pytest.raises(BackendError, match="asked to fail in generate"):
            run_experiment(**fake_fields(fake_backend))
    finally:
        FakeBackend.fail_on = None


def test_the_runner_protocol_is_declared_on_the_base_class() -> None:
    """Every hook the study loop calls exists on Runner (a plugin need not guess)."""
    for hook in ("run", "preflight", "prepare", "submit", "wait", "result", "cancel", "release"):
        assert callable(getattr(Runner, hook)), hook
    with pytest.raises(NotImplementedError, match="one experiment at a time"):
        LocalRunner().wait([object()], timeout_s=0)
