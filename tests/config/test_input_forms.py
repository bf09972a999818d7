"""Every form a user may write a value in: paths as ``os.PathLike``, ``cycles: 3``, bare
``ExperimentConfig(...)`` calls; each accepted, or refused with the field and the fix."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest
import yaml

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.study import StudyConfig
from llem_nb.errors import ConfigError
from llem_nb.results.frame import load_results
from llem_nb.study.study import Study
from tests.support.fake import FAST


class _OwnPath(os.PathLike):
    """A path-like that is not a ``pathlib`` path (what some file pickers hand back)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return self.path


def test_experiment_config_takes_pathlike_model_and_dataset_as_strings(tmp_path: Path) -> None:
    config = ExperimentConfig(model=tmp_path / "m", dataset=_OwnPath("/data/p.jsonl"))
    assert config.model == str(tmp_path / "m")
    assert config.dataset == "/data/p.jsonl"
    assert type(config.model) is str and type(config.dataset) is str
    same = ExperimentConfig(model=str(tmp_path / "m"), dataset="/data/p.jsonl")
    assert config.config_hash == same.config_hash


def test_readme_first_example_with_a_path_model(tmp_path: Path) -> None:
    model = tmp_path / "SmolLM2"
    study = (
        Study("batch-sweep", model=model, precision="fp32", n_prompts=16, max_output_tokens=64)
        .sweep(batch_size=[1, 2, 4, 8])
        .cycles(3, order="interleaved")
    )
    assert study.config.base["model"] == str(model)
    assert list(study.preview()["model"]) == [str(model)] * 4
    text = study.to_yaml(tmp_path / "study.yaml")
    assert yaml.safe_load(text)["base"]["model"] == str(model)
    again = Study.from_yaml(tmp_path / "study.yaml")
    assert [p.config.config_hash for p in again.points] == [
        p.config.config_hash for p in study.points
    ]


def test_pathlike_in_sweeps_points_and_results_dir(tmp_path: Path, fake_backend: str) -> None:
    one, two = PurePosixPath("/models/a"), _OwnPath("/models/b")
    study = Study("paths", backend=fake_backend, model="x", **FAST).sweep(model=[one, two])
    assert study.config.sweep["model"] == ["/models/a", "/models/b"]
    added = Study("paths", backend=fake_backend, model="x", **FAST).add(model=two)
    assert added.config.experiments == [{"model": "/models/b"}]
    result = study.run(results_dir=_OwnPath(str(tmp_path / "res")), progress=False)
    assert sorted(result.df["model"]) == ["/models/a", "/models/b"]
    assert len(load_results(_OwnPath(str(tmp_path / "res")))) == 2


def test_bare_experiment_config_with_a_typo_says_did_you_mean() -> None:
    with pytest.raises(ConfigError, match="did you mean 'batch_size'") as info:
        ExperimentConfig(model="m", bach_size=2)
    assert info.value.field == "bach_size"
    assert "help(llem_nb.ExperimentConfig)" in (info.value.fix or "")
    with pytest.raises(ConfigError, match="'batch_size'"):
        ExperimentConfig(model="m", batch_size=0)


def test_cycles_as_a_number_is_the_count() -> None:
    study = StudyConfig.from_yaml_text("name: s\nbase: {model: m}\ncycles: 3\n")
    assert (study.cycles.n, study.cycles.order) == (3, "sequential")
    with pytest.raises(ConfigError, match="cycles"):
        StudyConfig.from_yaml_text("name: s\nbase: {model: m}\ncycles: 0\n")


def test_long_study_name_says_the_limit() -> None:
    with pytest.raises(ConfigError, match="at most 100 characters") as info:
        Study("x" * 101, model="m")
    assert "101" in str(info.value)
    assert Study("x" * 100, model="m").config.name == "x" * 100
