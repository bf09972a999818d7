"""The Study builder: every call returns a new study; the one it was called on is unchanged."""

from __future__ import annotations

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
