"""``llem-nb resume DIR``: runs what a study run left undone; exit 1 when experiments fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import llem_nb as ll
from llem_nb.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, main
from llem_nb.errors import ConfigError
from llem_nb.results.store import ResultStore
from llem_nb.run.studydir import ResumeWarning
from llem_nb.testing import FakeBackend, use_fake_backend
from tests.support.faultkit import refuse_publishing


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
    assert "resumed cli: 1 already done, 0 re-run (machine failures), 0 failed" in text
    assert "1 run now" in text and f"results: {out.dir}" in text


def test_resume_exits_1_when_experiments_fail(
    study: ll.Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeBackend.fail_on = "generate"
    try:
        out = study.run(results_dir=tmp_path, progress=False)
        with pytest.warns(ResumeWarning, match="retry_failed=True"):
            code = main(["resume", str(out.dir)])
        assert code == EXIT_OK  # nothing left without --retry-failed
        text = capsys.readouterr().out
        line = "0 already done, 0 re-run (machine failures), 2 failed (retry with --retry-failed)"
        assert line in text
        assert main(["resume", str(out.dir), "--retry-failed"]) == EXIT_FAILED
    finally:
        FakeBackend.fail_on = None


def test_resume_reruns_what_the_machine_lost_and_says_so(
    study: ll.Study,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A result the disk refused is a machine failure: a plain resume measures it again."""
    refuse_publishing(monkeypatch, lambda src, published: bool(published))
    out = study.run(results_dir=tmp_path, progress=False)
    monkeypatch.undo()
    assert [r.status for r in out.results] == ["ok", "failed"]
    assert len(ll.load_results(out.dir)) == 1
    assert main(["resume", str(out.dir)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "1 already done, 1 re-run (machine failures), 0 failed" in text
    df = ll.load_results(out.dir)
    assert sorted(df["status"]) == ["ok", "ok"] and sorted(df["batch_size"]) == [1, 2]


def test_resume_refuses_an_edited_study_yaml(
    study: ll.Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dir's study.yaml edited by hand is a changed definition, as in Python."""
    out = study.run(results_dir=tmp_path, progress=False)
    spec = out.dir / "study.yaml"
    edited = yaml.safe_load(spec.read_text())
    edited["sweep"]["batch_size"] = [1, 4]
    spec.write_text(yaml.safe_dump(edited))
    journal = (out.dir / "journal.jsonl").read_bytes()
    assert main(["resume", str(out.dir)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "sweep.batch_size: [1, 2] → [1, 4]" in err and "--force" in err
    assert (out.dir / "journal.jsonl").read_bytes() == journal
    with pytest.raises(ConfigError, match=r"sweep.batch_size: \[1, 2\] → \[1, 4\]"):
        ll.Study.resume(out.dir, progress=False)
    assert main(["resume", str(out.dir), "--force"]) == EXIT_OK
    df = ll.load_results(out.dir)
    assert sorted(df["batch_size"]) == [1, 2, 4]
