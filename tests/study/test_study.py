"""The Study builder: every call returns a new study; the one it was called on is unchanged."""

from __future__ import annotations

import pytest

from llem_nb.errors import ConfigError
from llem_nb.study.study import Study


def test_builders_return_new_studies_and_never_share_axes() -> None:
    base = Study("alias", model="m")
    small = base.sweep(batch_size=[1, 2])
    large = base.sweep(batch_size=[8, 16])
    assert base.config.sweep == {}
    assert small.config.sweep == {"batch_size": [1, 2]}
    assert large.config.sweep == {"batch_size": [8, 16]}
    cycled = small.cycles(3, order="interleaved")
    assert (small.config.cycles.n, cycled.config.cycles.n) == (1, 3)
    placed = cycled.runners(pytorch="subprocess").gap(2).cooldown(until_within_c=4)
    assert cycled.config.runners == {} and cycled.config.gap_seconds == 0
    assert placed.config.runners == {"pytorch": "subprocess"} and placed.config.gap_seconds == 2
    assert placed.config.cooldown.until_within_c == 4
    assert cycled.config.cooldown.until_within_c is None
    extra = base.add(batch_size=3)
    assert base.config.experiments == [] and len(extra.config.experiments) == 1
    assert [p.config.batch_size for p in large.points] == [8, 16]


def test_run_options_are_defined_once_and_checked_by_name(fake_backend: str, tmp_path) -> None:
    import inspect

    from llem_nb.run.options import RunOptions

    study = Study("opts", model="m", backend=fake_backend)
    names = RunOptions.names()
    for method, skipped in ((study.run, set()), (study.start, set()), (Study.resume, {"resume"})):
        params = inspect.signature(method).parameters
        assert set(names) - skipped - {"results_dir"} <= set(params)
    assert inspect.signature(study.start).parameters["progress"].default is False
    with pytest.raises(ConfigError, match="did you mean 'retry_failed'") as info:
        study.run(results_dir=tmp_path, retry_faild=True)
    assert info.value.field == "retry_faild"
    assert list(tmp_path.iterdir()) == []


def test_run_options_build_on_a_base() -> None:
    from llem_nb.run.options import RunOptions

    def callback(event: object) -> None:
        return None

    base = RunOptions.build(callbacks=[callback], progress=False)
    changed = RunOptions.build(base, retry_failed=True)
    assert (changed.callbacks, changed.progress, changed.retry_failed) == ((callback,), False, True)
    assert RunOptions.build(base, callbacks=None).callbacks == ()
