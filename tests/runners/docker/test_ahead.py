"""Containers created ahead and removed later, with a stand-in for the SDK's container."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.runners.docker.ahead import Ahead
from llem_nb.runners.docker.classify import Failure
from llem_nb.runners.docker.container import Prepared
from llem_nb.runners.docker.errors import ImagePullError
from llem_nb.runners.exchange import Exchange


class SdkContainer:
    """What the runner asks of a docker-py container here: ``remove(force=True)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.removed = threading.Event()

    def remove(self, force: bool = False) -> None:
        assert force
        self.removed.set()


def config(seed: int) -> ExperimentConfig:
    return ExperimentConfig(model="m", gpus=0, decoder={"seed": seed})


@pytest.fixture
def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, str]]:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    return []


def creator(made: list[tuple[int, int, str]], fail: bool = False):  # type: ignore[no-untyped-def]
    def create(cfg: ExperimentConfig, cycle: int, study: str) -> Prepared:
        made.append((cfg.decoder.seed, cycle, study))
        exchange = Exchange(cfg, cycle=cycle, study=study)
        failure = Failure(cfg.experiment_id, str(exchange.dir), "img:1")
        if fail:
            raise ImagePullError("no image", exchange_dir=str(exchange.dir))
        return Prepared(exchange, failure, {}, SdkContainer(f"c{cfg.decoder.seed}"))

    return create


def test_queued_experiments_are_created_only_once_a_container_has_started(
    made: list[tuple[int, int, str]], tmp_path: Path
) -> None:
    ahead = Ahead(creator(made))
    ahead.queue(config(1), 0, "s")
    ahead.queue(config(1), 0, "s")
    assert made == []  # nothing before the current container starts
    ahead.create_queued()
    prepared = ahead.take(config(1), 0, "s")
    assert prepared is not None and made == [(1, 0, "s")]
    assert prepared.exchange.dir.parent == tmp_path
    assert ahead.take(config(1), 0, "s") is None  # taken once
    assert ahead.take(config(2), 0, "s") is None  # never announced: the runner creates it
    ahead.close()


def test_an_announced_experiment_that_is_run_before_it_was_created_is_not_created_twice(
    made: list[tuple[int, int, str]],
) -> None:
    ahead = Ahead(creator(made))
    ahead.queue(config(1), 0, "s")
    assert ahead.take(config(1), 0, "s") is None
    ahead.create_queued()
    ahead.close()
    assert made == []


def test_a_failed_creation_leaves_no_dir_behind_so_the_runner_can_report_its_own(
    made: list[tuple[int, int, str]], tmp_path: Path
) -> None:
    ahead = Ahead(creator(made, fail=True))
    ahead.queue(config(1), 0, "s")
    ahead.create_queued()
    assert ahead.take(config(1), 0, "s") is None
    assert made == [(1, 0, "s")] and list(tmp_path.iterdir()) == []
    ahead.close()


def test_drop_and_close_remove_what_was_prepared_and_what_finished(
    made: list[tuple[int, int, str]], tmp_path: Path
) -> None:
    ahead = Ahead(creator(made))
    for seed in (1, 2):
        ahead.queue(config(seed), 0, "s")
    ahead.create_queued()
    finished = SdkContainer("done")
    ahead.remove_later(finished)
    prepared = [ahead.take(config(1), 0, "s")]
    ahead.close()
    assert finished.removed.is_set()
    assert [p.container.removed.is_set() for p in prepared if p] == [False]  # taken: the runner's
    assert len(list(tmp_path.iterdir())) == 1  # the taken one's dir; the other is cleaned up
