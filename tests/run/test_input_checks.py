"""Inputs a study reads are checked before anything runs: a dataset file's every line and
its length against ``n_prompts``, so a bad file is one clear error, not a failed row each."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.errors import ConfigError
from llem_nb.study.study import Study
from tests.support.fake import fake_fields


def _study(backend: str, dataset: Path, n_prompts: int) -> Study:
    fields = fake_fields(backend, dataset=dataset, n_prompts=n_prompts)
    return Study("ds", **fields).sweep(batch_size=[1, 2])


def test_a_malformed_line_is_refused_before_the_run(fake_backend: str, tmp_path: Path) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "one"}\n{"prompt": "two"\n{"prompt": "three"}\n')
    with pytest.raises(ConfigError) as info:
        _study(fake_backend, data, 2).run(results_dir=tmp_path / "res", progress=False)
    message = str(info.value)
    assert str(data) in message and "line 2" in message and "not valid JSON" in message
    assert info.value.field == "dataset"
    assert "fix the JSON on that line" in (info.value.fix or "")
    assert not (tmp_path / "res").exists() or not list((tmp_path / "res").rglob("*.json"))


def test_too_few_lines_for_n_prompts_is_refused_before_the_run(
    fake_backend: str, tmp_path: Path
) -> None:
    data = tmp_path / "three.jsonl"
    data.write_text('"a b"\n"c d"\n\n"e f"\n')
    with pytest.raises(ConfigError) as info:
        _study(fake_backend, data, 5).run(results_dir=tmp_path / "res", progress=False)
    assert str(data) in str(info.value) and "has only 3 prompts" in str(info.value)
    assert info.value.field == "n_prompts"
    assert "n_prompts to 3 or fewer" in (info.value.fix or "")
    assert not (tmp_path / "res").exists() or not list((tmp_path / "res").rglob("*.json"))
    ok = _study(fake_backend, data, 3).run(results_dir=tmp_path / "ok", progress=False)
    assert list(ok.df["status"]) == ["ok", "ok"]
