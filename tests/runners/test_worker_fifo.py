"""The kept-container protocol without a container: the worker in ``--fifo`` mode on this
machine, answering ``KeptContainer.ask`` through the two named pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llem_nb.config.plugins import plugin_env
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.docker.reuse import REPLIES, REQUESTS, KeptContainer, image_python
from llem_nb.runners.exchange import Exchange
from llem_nb.runners.worker import WorkerTimeout
from tests.runners.test_exchange import fake_config


def test_one_worker_answers_each_experiment_through_the_pipes_keeping_the_model(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    kept = KeptContainer("identity", inside=None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "llem_nb.runners.worker", "--fifo",
         str(kept.dir / REQUESTS), str(kept.dir / REPLIES)],
        start_new_session=True,
        env={**os.environ, **plugin_env()},
    )  # fmt: skip
    try:
        results = []
        for batch_size in (1, 2):
            exchange = Exchange(fake_config(fake_backend, batch_size=batch_size), cycle=0,
                                study="s", parent=kept.dir)  # fmt: skip
            reply = kept.ask(exchange.config_path, timeout_s=120)
            assert reply is not None and reply.ok
            results.append(ExperimentResult.model_validate_json(exchange.result_path.read_text()))
        assert [r.config["batch_size"] for r in results] == [1, 2]
        assert [r.model_reused for r in results] == [False, True]
        worker.kill()
        worker.wait()
        late = Exchange(fake_config(fake_backend), cycle=1, study="s", parent=kept.dir)
        with pytest.raises(WorkerTimeout):
            kept.ask(late.config_path, timeout_s=0.5)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        kept.close()
    assert not kept.dir.exists()


def test_image_python_is_the_interpreter_of_llem_nb_images_only() -> None:
    cmd = ["/opt/llem/bin/python", "-m", "llem_nb.runners.entrypoint"]
    assert image_python({"Config": {"Cmd": cmd}}) == "/opt/llem/bin/python"
    assert image_python({"Config": {"Cmd": ["bash"]}}) is None
    assert image_python({"Config": {"Cmd": None}}) is None
