"""``llem-nb run``: progress, the table, each failure spelled out, one summary line, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llem_nb.cli import (
    EXIT_CONFIG,
    EXIT_CRASH,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import register_runner
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import Runner


def write_study(path: Path, backend: str, **fields: Any) -> Path:
    base = {
        "model": "none",
        "backend": backend,
        "gpus": 0,
        "n_prompts": 2,
        "max_output_tokens": 2,
        "warmup": {"runs": 0},
        "baseline": {"seconds": 0},
        "energy": {"source": "none"},
        **fields,
    }
    path.write_text(yaml.safe_dump({"name": "cli", "base": base, "sweep": {"batch_size": [1, 2]}}))
    return path


def test_all_ok_prints_the_table_and_one_summary_line(
    fake_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(tmp_path / "study.yaml", fake_backend)
    code = main(["run", str(study), "--results-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert "batch_size" in out and "FAILED" not in out
    assert out.strip().splitlines()[-1].startswith("study cli done: 2 ok, 0 failed; results in ")
    assert "experiments" in err  # the progress bar


def test_each_failure_shows_type_message_fix_and_kept_dir(
    fake_backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLEM_FAKE_FAIL", "generate")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    study = write_study(tmp_path / "study.yaml", fake_backend)
    code = main(["run", str(study), "--runner", "subprocess", "--results-dir", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    blocks = [line for line in out.splitlines() if line.startswith("FAILED ")]
    assert len(blocks) == 2 and all("RunnerError (inside: BackendError)" in b for b in blocks)
    assert sorted(b.split(" (experiment ")[0] for b in blocks) == [
        "FAILED batch_size=1", "FAILED batch_size=2"]  # fmt: skip
    assert out.count("  message: experiment ") == 2
    assert "fake backend asked to fail in generate" in out
    assert out.count("  fix:     unset LLEM_FAKE_FAIL") == 2
    kept = [line.split("kept:", 1)[1].strip() for line in out.splitlines() if "  kept: " in line]
    assert len(kept) == 2 and all(Path(k).is_dir() and Path(k).parent == tmp_path for k in kept)
    assert out.strip().splitlines()[-1].startswith("study cli done: 0 ok, 2 failed")


class Interrupting(Runner):
    """A runner whose first experiment is stopped by Ctrl-C."""

    name = "interrupting"

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        raise KeyboardInterrupt


def test_an_interrupted_run_exits_130_and_says_so(
    fake_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_runner("interrupting", Interrupting, child_processes=False)
    study = write_study(tmp_path / "study.yaml", fake_backend)
    with pytest.warns(UserWarning, match="interrupted"):
        code = main(["run", str(study), "--runner", "interrupting", "--results-dir", str(tmp_path)])
    assert code == EXIT_INTERRUPTED
    assert "study cli interrupted: 0 ok, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "study file .*missing.yaml' does not exist"),
        ("bad_dataset", "dataset 'nowhere/prompts.jsonl' .* does not exist"),
        ("results_is_a_file", "results_dir .* is a file"),
    ],
)
def test_config_and_path_problems_exit_3_before_anything_runs(
    fake_backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    expected: str,
) -> None:
    import re

    study = tmp_path / "missing.yaml"
    results = tmp_path / "out"
    if setup == "bad_dataset":
        study = write_study(tmp_path / "study.yaml", fake_backend, dataset="nowhere/prompts.jsonl")
    elif setup == "results_is_a_file":
        study = write_study(tmp_path / "study.yaml", fake_backend)
        results.write_text("not a dir")
    code = main(["run", str(study), "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert re.search(expected, err), err
    assert "Traceback" not in err and "fix:" in err
    assert not results.is_dir()


@pytest.mark.parametrize("where", ["name_too_long", "proc"])
def test_a_results_dir_the_os_rejects_exits_3_naming_it(
    fake_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    study = write_study(tmp_path / "study.yaml", fake_backend)
    results = tmp_path / ("x" * 300) if where == "name_too_long" else Path("/proc/llem-nb-test")
    code = main(["run", str(study), "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG, err
    assert f"results_dir {str(results)!r}" in err and "fix:" in err
    assert "Traceback" not in err


class Crashing(Runner):
    """A runner with a bug: its preflight raises what no one expects."""

    name = "crashing"

    def preflight(self, config: ExperimentConfig) -> None:
        raise ZeroDivisionError("division by zero")

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        raise AssertionError("never reached")


def test_an_unhandled_crash_has_its_own_exit_code(
    fake_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_runner("crashing", Crashing, child_processes=False)
    study = write_study(tmp_path / "study.yaml", fake_backend)
    code = main(["run", str(study), "--runner", "crashing", "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_CRASH and EXIT_CRASH not in (EXIT_OK, EXIT_FAILED, EXIT_CONFIG)
    assert "ZeroDivisionError: division by zero" in err and "Traceback" in err
    assert "internal error" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run"])
    assert info.value.code == EXIT_USAGE
    assert "--model" in capsys.readouterr().err


def test_one_experiment_from_model_and_backend_flags_without_a_study_file(
    fake_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's first command, ``llem run --model gpt2 --backend pytorch``, with our flags."""
    code = main(
        [
            "run",
            "--model",
            "none",
            "--backend",
            fake_backend,
            "--gpus",
            "0",
            "--batch-size",
            "2",
            "--n-prompts",
            "2",
            "--max-output-tokens",
            "2",
            "--results-dir",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert code == EXIT_OK
    header = out.splitlines()[0].split()
    assert header[:2] == ["label", "backend"]
    (result_file,) = (tmp_path / "out").rglob("*.result.json")
    stored = ExperimentResult.model_validate_json(result_file.read_text())
    assert stored.config["backend"] == fake_backend
    assert stored.config["batch_size"] == 2 and stored.config["n_prompts"] == 2


def test_a_study_file_and_one_experiment_flags_together_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "s.yaml", "--model", "m", "--results-dir", str(tmp_path / "out")])
    assert code == EXIT_CONFIG
    assert "--model, not both" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
