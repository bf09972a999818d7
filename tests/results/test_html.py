"""Rich notebook display of Study, StudyResult and ExperimentResult (``_repr_html_``)."""

from __future__ import annotations

import re
from pathlib import Path

from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend
from tests.support.fake import FAST


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_study_shows_counts_axes_and_the_expanded_points(fake_backend: str) -> None:
    study = (
        Study("shown", model="fake-model", backend=fake_backend, **FAST)
        .sweep(batch_size=[1, 2], decoder__temperature=[0.0, 0.7])
        .cycles(3)
    )
    text = _text(study._repr_html_())
    assert "experiments 4 " in text and "runs 12 " in text
    assert "sweep.batch_size 1, 2" in text
    for point in study.points:
        assert point.config.experiment_id in text


def test_study_result_and_experiment_result_tables(fake_backend: str, tmp_path: Path) -> None:
    study = Study("shown", model="fake-model", backend=fake_backend, **FAST).sweep(
        batch_size=[1, 2]
    )
    ok = study.cycles(2).run(results_dir=tmp_path, progress=False)
    text = _text(ok._repr_html_())
    assert "this run 4 ok, 0 failed" in text
    assert text.count("2 ok") == 2
    assert "quality flags" in _text(ok.results[0]._repr_html_())

    FakeBackend.fail_on = "generate"
    failed = study.run(results_dir=tmp_path / "failed", progress=False)
    FakeBackend.fail_on = None
    text = _text(failed._repr_html_())
    assert "0 ok, 2 failed" in text  # one cycle: .cycles(2) returned a new Study
    row = _text(failed.results[0]._repr_html_())
    assert "BackendError" in row and "fix: unset LLEM_FAKE_FAIL" in row
