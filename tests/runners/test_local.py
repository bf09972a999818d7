"""The local and subprocess runners with reuse: a kept model in the kernel, one worker process
per load key, and the same crash, timeout and failure handling as a process per experiment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from llem_nb.backends.base import GenerationOutput
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.config.plugins import register_backend
from llem_nb.errors import BackendError, RunnerError
from llem_nb.runners.local import LocalRunner, SubprocessRunner
from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend
from tests.support.fake import fake_fields
from tests.support.faultkit import alive


def fake_points(backend: str, **extra: Any) -> Study:
    return Study("workers", **fake_fields(backend, **extra)).sweep(batch_size=[1, 2])


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def test_subprocess_keeps_one_worker_per_load_key(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("LLEM_FAKE_PIDFILE", str(pidfile))
    study = fake_points(fake_backend).sweep(model=["model-a", "model-b"]).cycles(2)
    res = study.run(runner="subprocess", results_dir=tmp_path / "auto", progress=False)
    assert [r.status for r in res.results] == ["ok"] * 8
    assert [r.config["model"] for r in res.results] == ["model-a"] * 4 + ["model-b"] * 4
    seen = pids(pidfile)
    assert len(set(seen[:4])) == 1 and len(set(seen[4:])) == 1 and seen[0] != seen[4]
    assert not alive(seen[0]) and not alive(seen[4])
    assert [r.model_reused for r in res.results] == [False, True, True, True] * 2
    pidfile.unlink()
    never = study.reuse("never").run(runner="subprocess", results_dir=tmp_path, progress=False)
    assert len(set(pids(pidfile))) == 8 and not any(r.model_reused for r in never.results)


def _config(backend: str, **extra: Any) -> ExperimentConfig:
    return validate_experiment(fake_fields(backend, **extra))


def auto_runner() -> SubprocessRunner:
    runner = SubprocessRunner()
    runner.reuse = "auto"
    return runner


class FailsOnThree(FakeBackend):
    """Raises in generate at batch size 3 (imported by name in the worker process)."""

    def generate(self, prompts: list[str]) -> GenerationOutput:
        if self.config.batch_size == 3:
            raise BackendError("fake backend refuses batch size 3")
        return super().generate(prompts)


def test_an_experiment_that_raises_in_the_worker_leaves_it_serving_with_a_fresh_model(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("LLEM_FAKE_PIDFILE", str(pidfile))
    register_backend("fails-on-3", "tests.runners.test_local:FailsOnThree")
    runner = auto_runner()
    try:
        first = runner.run(_config("fails-on-3", batch_size=1))
        with pytest.raises(RunnerError) as info:
            runner.run(_config("fails-on-3", batch_size=3))
        after = runner.run(_config("fails-on-3", batch_size=2))
    finally:
        runner.release()
    assert info.value.error_type == "BackendError" and "batch size 3" in info.value.message
    assert "Traceback" in (info.value.remote_traceback or "")
    kept = Path(info.value.message.split("kept in ")[1].rstrip(")"))
    assert "refuses batch size 3" in (kept / "output.log").read_text()
    assert (first.model_reused, after.model_reused) == (False, False)
    assert len(set(pids(pidfile))) == 1


def test_a_changed_environment_gets_a_new_worker(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("LLEM_FAKE_PIDFILE", str(pidfile))
    runner = auto_runner()
    try:
        runner.run(_config(fake_backend, batch_size=1))
        runner.run(_config(fake_backend, batch_size=2))
        monkeypatch.setenv("LLEM_SOME_SETTING", "changed")
        again = runner.run(_config(fake_backend, batch_size=1))
    finally:
        runner.release()
    first, second, third = pids(pidfile)
    assert first == second != third and not again.model_reused


def test_release_stops_the_worker(fake_backend: str) -> None:
    runner = auto_runner()
    runner.run(_config(fake_backend))
    worker = runner._worker
    assert worker is not None and worker.alive
    directory = worker.dir
    runner.release()
    assert not worker.alive and worker.proc.returncode == 0  # it freed its model and exited
    assert not directory.exists() and runner._worker is None


def test_reuse_never_runs_a_process_per_experiment(fake_backend: str, tmp_path: Path) -> None:
    runner = SubprocessRunner()
    assert runner.reuse == "never"
    assert runner.run(_config(fake_backend)).status == "ok"
    assert runner._worker is None


def test_local_runner_keeps_the_model_in_the_kernel(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The tiny model, loaded once for a sweep of batch sizes and decoding settings,
    generates exactly the tokens of a load per experiment, request by request."""
    study = (
        Study(
            "kernel",
            model=str(tiny_model_dir),
            precision="fp32",
            gpus=0,
            n_prompts=5,
            max_output_tokens=8,
            energy={"source": "none"},
            pytorch={"num_threads": 1},
        )
        .sweep(batch_size=[1, 3], decoder__temperature=[0.0, 0.9])
        .cycles(2)
    )
    runs = {}
    for mode in ("never", "auto"):
        res = study.reuse(mode).run(runner="local", results_dir=tmp_path / mode, progress=False)
        assert all(r.status == "ok" for r in res.results)
        runs[mode] = {
            (r.config["batch_size"], r.config["decoder"]["temperature"], r.cycle): r
            for r in res.results
        }
    assert runs["never"].keys() == runs["auto"].keys()
    for key, never in runs["never"].items():
        auto = runs["auto"][key]
        assert never.requests is not None and auto.requests is not None
        assert auto.requests.output_tokens == never.requests.output_tokens, key
        assert auto.requests.input_tokens == never.requests.input_tokens, key
    reused = [r.model_reused for r in runs["auto"].values()]
    assert reused.count(False) == 1 and not any(r.model_reused for r in runs["never"].values())
    sampled = {k: r for k, r in runs["auto"].items() if k[1] > 0}
    greedy = {k: r for k, r in runs["auto"].items() if k[1] == 0}
    assert sampled and greedy


def test_local_runner_release_unloads(fake_backend: str) -> None:
    runner = LocalRunner()
    runner.reuse = "auto"
    runner.run(_config(fake_backend))
    assert runner.keeper.backend is not None
    runner.release()
    assert runner.keeper.backend is None
    runner.reuse = "never"
    runner.run(_config(fake_backend))
    assert runner.keeper.backend is None


def test_worker_protocol_in_process(fake_backend: str, tmp_path: Path) -> None:
    """The worker's loop without a process: one line per request, one answer per line."""
    import io
    import json

    from llem_nb.runners.exchange import Exchange
    from llem_nb.runners.worker import serve

    good = Exchange(_config(fake_backend), cycle=0, study="s")
    missing = _config("pytorch", model=str(tmp_path / "missing"))
    bad = Exchange(missing, cycle=1, study="s")
    replies = io.StringIO()
    assert serve(io.StringIO(f"{good.config_path}\n\n{bad.config_path}\n"), replies) == 0
    answers = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert answers == [
        {"done": str(good.config_path), "ok": True},
        {"done": str(bad.config_path), "ok": False},
    ]
    assert good.read_result() is not None and good.read_result().cycle == 0  # type: ignore[union-attr]
    error = bad.read_error()
    assert error is not None and error.type == "ConfigError" and "does not exist" in error.message
    for exchange in (good, bad):
        exchange.cleanup()
    assert os.environ.get("LLEM_CONFIG_PATH") is None
