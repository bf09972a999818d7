"""``llem-nb resume DIR``: runs what a study run left undone; exit 1 when experiments fail."""

from __future__ import annotations

from pathlib import Path

import pytest

import llem_nb as ll
from llem_nb.cli import EXIT_FAILED, EXIT_OK, main
from llem_nb.results.store import ResultStore
from llem_nb.testing import FakeBackend, use_fake_backend


@pytest.fixture
def study(tmp_path: Path) -> ll.Study:
    FakeBackend.step_s = 0.0
    FakeBackend.fail_on = None
    backend = use_fake_backend()
    return ll.Study("cli", model="m", backend=backend, n_prompts=2, max_output_tokens=4).sweep(
        batch_size=[1, 2]
    )


def test_resume_reruns_a_lost_result(
    study: ll.Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = study.run(results_dir=tmp_path, progress=False)
    lost = next(ResultStore(out.dir).iter_paths())
    lost.unlink()
    with pytest.warns(UserWarning, match="measuring it again"):
        code = main(["resume", str(out.dir)])
    assert code == EXIT_OK and lost.is_file()
    text = capsys.readouterr().out
    assert "resumed cli: 1 already done, 1 run now" in text and f"results: {out.dir}" in text


def test_resume_exits_1_when_experiments_fail(study: ll.Study, tmp_path: Path) -> None:
    FakeBackend.fail_on = "generate"
    try:
        out = study.run(results_dir=tmp_path, progress=False)
        assert main(["resume", str(out.dir)]) == EXIT_OK  # nothing left without --retry-failed
        assert main(["resume", str(out.dir), "--retry-failed"]) == EXIT_FAILED
    finally:
        FakeBackend.fail_on = None
