"""Config validation, sweep expansion, hashing and YAML round trips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llem_nb.config.experiment import ExperimentConfig, canonical_json, validate_experiment
from llem_nb.config.study import StudyConfig, expand
from llem_nb.errors import ConfigError
from llem_nb.study.study import Study


def test_two_backend_sweep_is_full_product_per_backend() -> None:
    study = Study("s", model="m").sweep(
        {"backend": ["pytorch", "vllm"], "decoder.temperature": [0.0, 0.7]},
        pytorch__batch_size=[1, 2, 4],
    )
    points = study.points
    torch_points = [p for p in points if p.config.backend == "pytorch"]
    vllm_points = [p for p in points if p.config.backend == "vllm"]
    assert len(torch_points) == 2 * 3
    assert len(vllm_points) == 2
    combos = {(p.config.decoder.temperature, p.config.batch_size) for p in torch_points}
    assert combos == {(t, b) for t in (0.0, 0.7) for b in (1, 2, 4)}
    assert {p.config.batch_size for p in vllm_points} == {8}
    assert all("pytorch.batch_size" not in p.overrides for p in vllm_points)


def test_backend_section_keys_are_scoped() -> None:
    study = Study("s", model="m", backend="pytorch").sweep(
        {"pytorch.attn_implementation": ["eager", "sdpa"], "vllm.engine.max_num_seqs": [8, 16]}
    )
    assert [p.config.pytorch.attn_implementation for p in study.points] == ["eager", "sdpa"]


def test_invalid_combinations_are_dropped_with_reason() -> None:
    study = Study("s", model="m").sweep(
        {"decoder.temperature": [0.0, 0.8], "decoder.do_sample": [True, False]}
    )
    assert len(study.points) == 3
    assert len(study.invalid) == 1
    assert "temperature" in study.invalid[0].reason
    assert study.invalid[0].overrides == {"decoder.temperature": 0.0, "decoder.do_sample": True}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "m", "batch_size": 0}, "batch_size"),
        ({"model": "m", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "bach_size": 2}, "bach_size"),
        ({"model": "m", "precision": "int3"}, "precision"),
        ({"model": "m", "decoder": {"temprature": 0.5}}, "decoder.temprature"),
        ({"model": "m", "backend": "pytorhc"}, "backend"),
        ({"model": "m", "gpus": -1}, "gpus"),
        ({"batch_size": 2}, "model"),
    ],
)
def test_bad_fields_name_the_field(fields: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_experiment(fields)
    assert field in str(info.value)
    assert info.value.field == field


def test_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        Study("s", model="m", bach_size=3)
    with pytest.raises(ConfigError, match="did you mean 'decoder.temperature'"):
        Study("s", model="m").sweep({"decoder.temprature": [0.1]})
    with pytest.raises(ConfigError, match="did you mean 'pytorch'"):
        validate_experiment({"model": "m", "backend": "pytorhc"})


def test_empty_and_impossible_sweep_axes_fail_at_once() -> None:
    with pytest.raises(ConfigError, match="empty"):
        Study("s", model="m").sweep(batch_size=[])
    with pytest.raises(ConfigError, match="batch_size"):
        Study("s", model="m").sweep(batch_size=[1, 0])
    with pytest.raises(ConfigError, match="empty"):
        StudyConfig.load({"name": "s", "base": {"model": "m"}, "sweep": {"batch_size": []}})


def test_hash_ignores_key_order_and_non_measurement_fields() -> None:
    a = validate_experiment({"model": "m", "batch_size": 4, "decoder": {"seed": 1}})
    b = validate_experiment({"decoder": {"seed": 1}, "batch_size": 4, "model": "m"})
    c = validate_experiment({"decoder": {"seed": 1}, "batch_size": 4, "model": "m", "timeout_s": 9})
    d = validate_experiment(
        {
            "model": "m",
            "batch_size": 4,
            "decoder": {"seed": 1},
            "vllm": {"engine": {"max_num_seqs": 4}},
        }
    )
    assert a.config_hash == b.config_hash == c.config_hash == d.config_hash
    assert a.config_hash != validate_experiment({"model": "m", "batch_size": 5}).config_hash
    assert len(a.config_hash) == 64


GOLDEN_HASH = "48b6501f7ac08567c8f111bc33e29ec9d29f6df018c74e5b37dc0b34ee2fdf7c"
"""config_hash of {model: m, batch_size: 3, decoder.temperature: 0.7}: experiment ids (and so
resume) depend on it; a change here renames every stored result."""
TREE = Path(__file__).resolve().parents[2]


def test_hash_stable_across_processes() -> None:
    config = validate_experiment({"model": "m", "batch_size": 3, "decoder": {"temperature": 0.7}})
    assert config.config_hash == GOLDEN_HASH
    code = (
        "import llem_nb; from llem_nb.config.experiment import validate_experiment;"
        "print(llem_nb.__file__);"
        "print(validate_experiment({'decoder': {'temperature': 0.7}, 'batch_size': 3,"
        " 'model': 'm'}).config_hash)"
    )
    for seed in ("0", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(TREE)},
        )
        imported, digest = out.stdout.split()
        assert Path(imported).resolve() == TREE / "llem_nb" / "__init__.py"
        assert digest == GOLDEN_HASH


def test_passthrough_key_order_does_not_change_the_experiment() -> None:
    def vllm(engine: dict[str, int]) -> str:
        return validate_experiment(
            {"model": "m", "backend": "vllm", "vllm": {"engine": engine}}
        ).config_hash

    assert vllm({"x_opt": 1, "a_opt": 2}) == vllm({"a_opt": 2, "x_opt": 1})
    assert vllm({"x_opt": 1, "a_opt": 2}) != vllm({"x_opt": 2, "a_opt": 1})
    assert canonical_json({"x": {"z": 1, "b": [2, 1]}, "a": None}) == (
        '{"a":null,"x":{"b":[2,1],"z":1}}'
    )


def test_yaml_round_trip(tmp_path) -> None:
    study = (
        Study("rt", model="m", precision="fp16")
        .sweep(batch_size=[1, 2], decoder__temperature=[0.0, 0.5])
        .cycles(3, order="interleaved", seed=7)
        .runners(pytorch="subprocess")
        .gap(1.5)
    )
    path = tmp_path / "study.yaml"
    study.to_yaml(path)
    assert isinstance(yaml.safe_load(path.read_text()), dict)
    again = Study.from_yaml(path)
    assert again.config == study.config
    assert [p.config.config_hash for p in again.points] == [
        p.config.config_hash for p in study.points
    ]


def test_yaml_errors_are_config_errors(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase: {model: m, batch_size: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        StudyConfig.from_yaml(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        StudyConfig.from_yaml(bad)
    bad.write_text("name: x\nbase: {model: m}\nswep: {batch_size: [1]}\n")
    with pytest.raises(ConfigError, match="did you mean 'sweep'"):
        StudyConfig.from_yaml(bad)


def test_explicit_experiments_join_the_sweep() -> None:
    study = Study("s", model="m").sweep(batch_size=[1, 2]).add(batch_size=16, precision="fp16")
    assert [(p.config.batch_size, p.config.precision) for p in study.points] == [
        (1, "bf16"),
        (2, "bf16"),
        (16, "fp16"),
    ]


def test_duplicates_collapse_and_expand_is_pure() -> None:
    config = StudyConfig.load(
        {"name": "s", "base": {"model": "m"}, "sweep": {"batch_size": [2, 2]}}
    )
    points, invalid = expand(config)
    assert len(points) == 1 and not invalid
    assert expand(config)[0] == points


def test_vllm_engine_args() -> None:
    with pytest.raises(ConfigError, match="did you mean 'max_num_seqs'"):
        validate_experiment({"model": "m", "vllm": {"engine": {"max_num_seq": 4}}})
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        validate_experiment({"model": "m", "vllm": {"engine": {"gpu_memory_utilization": 1.5}}})
    with pytest.raises(ConfigError, match="tensor_parallel_size"):
        validate_experiment(
            {
                "model": "m",
                "backend": "vllm",
                "gpus": 1,
                "vllm": {"engine": {"tensor_parallel_size": 2}},
            }
        )
    cfg = validate_experiment({"model": "m", "vllm": {"engine": {"custom_flag": 1}}})
    assert cfg.vllm.engine.passthrough == {"custom_flag": 1}


def test_gpus_forms() -> None:
    assert validate_experiment({"model": "m", "gpus": 0}).gpu_count_requested == 0
    assert validate_experiment({"model": "m", "gpus": [0, "GPU-abc"]}).gpu_count_requested == 2
    assert validate_experiment({"model": "m"}).gpu_count_requested is None
    with pytest.raises(ConfigError):
        validate_experiment({"model": "m", "gpus": []})
    assert isinstance(ExperimentConfig(model="m"), ExperimentConfig)
