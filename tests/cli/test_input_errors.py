"""The command line's answers to wrong paths: a message naming the path, exit 3, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.cli import EXIT_CONFIG, main


def test_resume_of_a_missing_dir_says_it_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing_dir"
    assert main(["resume", str(missing)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"{missing} does not exist" in err
    assert "study.yaml" not in err and "Traceback" not in err
    assert not missing.exists()
