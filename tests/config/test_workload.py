"""The workload section: offline by default (hashes unchanged), serving validated up front."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.config.keys import check_key
from llem_nb.config.study import StudyConfig, expand
from llem_nb.config.workload import min_requests
from llem_nb.errors import ConfigError
from llem_nb.study.study import Study

SERVING = {"kind": "serving", "n_requests": 20, "max_concurrency": 4}


def served(**workload: object) -> ExperimentConfig:
    return validate_experiment(
        {"model": "m", "backend": "vllm", "workload": {**SERVING, **workload}}
    )


def test_default_workload_leaves_the_hash_of_existing_configs_unchanged() -> None:
    # The hash of ExperimentConfig(model="m") before the workload section existed.
    assert ExperimentConfig(model="m").config_hash == (
        "8065b1b678d7a77234205aa7eeaf396ebeceeb4364ceac87f28038bcb35782e4"
    )
    explicit = ExperimentConfig(model="m", workload={"kind": "offline"})
    assert explicit.config_hash == ExperimentConfig(model="m").config_hash
    assert "workload" not in ExperimentConfig(model="m").measurement_dict()


def test_serving_fields_are_hashed() -> None:
    one, two = served(request_rate=1), served(request_rate=2)
    assert one.config_hash != two.config_hash
    assert one.measurement_dict()["workload"]["request_rate"] == 1.0
    assert served(request_rate=float("inf")).workload.request_rate == "inf"
    assert served(request_rate="inf").workload.rate_rps == math.inf


def test_serving_on_pytorch_is_refused_naming_the_server_backends() -> None:
    with pytest.raises(ConfigError) as info:
        validate_experiment({"model": "m", "workload": {"kind": "serving"}})
    assert "backend='vllm'" in str(info.value) and "backend='openai'" in str(info.value)


def test_too_few_requests_for_a_steady_state_names_the_minimum() -> None:
    with pytest.raises(ConfigError, match=r"n_requests >= 10"):
        served(n_requests=9)
    assert min_requests(4) == 10
    assert served(n_requests=10).workload.n_requests == 10
    trim = served(n_requests=2, steady_state="trim", trim_lead_s=1.0)
    assert trim.workload.trim_lead_s == 1.0


def test_batch_limit_defaults_and_openai_needs_one() -> None:
    # vLLM's limit defaults to batch_size (as offline): 8 in flight needs 18 requests
    plain = {"model": "m", "backend": "vllm", "workload": {"kind": "serving"}}
    assert validate_experiment(plain).serving_batch_limit() == (8, "vllm.engine.max_num_seqs")
    with pytest.raises(ConfigError, match=r"n_requests >= 18"):
        validate_experiment({**plain, "workload": {"kind": "serving", "n_requests": 17}})
    with pytest.raises(ConfigError, match=r"openai\.max_num_seqs"):
        validate_experiment({"model": "m", "backend": "openai", "workload": {"kind": "serving"}})
    with pytest.raises(ConfigError, match=r"set workload\.kind='serving'"):
        validate_experiment({"model": "m", "backend": "openai"})
    ok = validate_experiment(
        {
            "model": "m",
            "backend": "openai",
            "openai": {"max_num_seqs": 8, "base_url": "http://127.0.0.1:9/v1/"},
            "workload": {"kind": "serving", "n_requests": 18},
        }
    )
    assert ok.serving_batch_limit() == (8, "openai.max_num_seqs")
    assert ok.openai.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("workload", "needle"),
    [
        ({"request_rate": 2}, "set workload.kind='serving'"),
        ({**SERVING, "burstiness": 2.0}, "set workload.arrival='gamma'"),
        ({**SERVING, "request_rate": 0}, "request_rate"),
        ({**SERVING, "trim_lead_s": 1.0}, "steady_state='trim'"),
        ({**SERVING, "reqest_rate": 1}, "did you mean 'workload.request_rate'"),
        ({**SERVING, "slo": {"ttft": 5}}, "did you mean 'workload.slo.ttft_ms'"),
    ],
)
def test_bad_workloads_name_the_field_and_fix(workload: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_experiment({"model": "m", "backend": "vllm", "workload": workload})
    assert needle in str(info.value)


def test_dotted_keys_are_checked_with_did_you_mean() -> None:
    assert check_key("workload.slo.ttft_ms") == "workload.slo.ttft_ms"
    assert check_key("workload__request_rate") == "workload.request_rate"
    with pytest.raises(ConfigError, match=r"did you mean 'workload\.request_rate'"):
        check_key("workload.request_rat")


def test_request_rate_sweeps_into_distinct_points() -> None:
    study = StudyConfig(
        name="s",
        base={"model": "m", "backend": "vllm", "workload": SERVING},
        sweep={"workload.request_rate": [1, 2, "inf"], "workload.slo.ttft_ms": [500]},
    )
    points, invalid = expand(study)
    assert invalid == []
    rates = [p.config.workload.request_rate for p in points]
    assert rates == [1.0, 2.0, "inf"]
    assert {p.config.workload.slo.ttft_ms for p in points} == {500.0}
    assert len({p.config.config_hash for p in points}) == 3


def test_yaml_study_file_carries_the_workload(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    data = {
        "name": "serve",
        "base": {
            "model": "m",
            "backend": "vllm",
            "vllm": {"engine": {"max_num_seqs": 2}},
            "workload": {"kind": "serving", "n_requests": 6, "arrival": "gamma", "burstiness": 3},
        },
        "sweep": {"workload.request_rate": [4, "inf"]},
    }
    path.write_text(yaml.safe_dump(data))
    points = Study.from_yaml(path).points
    assert [p.config.workload.rate_rps for p in points] == [4.0, math.inf]
    assert points[0].config.workload.burstiness == 3.0
