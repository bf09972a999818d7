"""Study files in LLenergyMeasure's layout load to the points its own grammar gives.

The studies below restate the example study files of LLenergyMeasure's public repository
(henrycgbaker/LLenergyMeasure: examples/ and configs/examples/, v2 study grammar) as our
own fixtures: same fields and values, written compactly. Each expected point list follows
that grammar's rules, worked out by hand: the sweep's Cartesian product with the last axis
fastest, each backend's dotted axes crossed only with the universal ones, then the explicit
entries (merged shallowly over the fixed fields) in file order.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from llem_nb.config.study import StudyConfig, expand
from llem_nb.errors import ConfigError
from llem_nb.study.study import Study

LLAMA, QWEN = "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-0.5B"
COMMON = {
    "dataset": "aienergyscore",
    "max_input_tokens": 512,
    "max_output_tokens": 128,
    "warmup": {"enabled": True, "n_warmup": 3, "thermal_floor_seconds": 30.0},
}


def load(tmp_path: Path, data: dict[str, Any], name: str = "study.yaml") -> Study:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = Study.from_yaml(path)
    study.caught = [str(w.message) for w in caught]  # type: ignore[attr-defined]
    return study


def rows(study: Study, *fields: str) -> list[tuple[Any, ...]]:
    out = []
    for point in study.points:
        data = point.config.model_dump()
        row = []
        for field in fields:
            value: Any = data
            for part in field.split("."):
                value = value[part]
            row.append(value)
        out.append(tuple(row))
    return out


def dropped(study: Study) -> list[str]:
    return [m for m in study.caught if m.startswith("dropped point")]  # type: ignore[attr-defined]


def test_reference_study_33_points_interleaved_with_its_runners(tmp_path: Path) -> None:
    """examples/study-reference.yaml: a universal sweep over five axes, one explicit entry."""
    data = {
        "name": "reference-sweep",
        **COMMON,
        "random_seed": 42,
        "energy": {"backend": "auto"},
        "sweep": {
            "model": [LLAMA, QWEN],
            "backend": ["pytorch", "vllm"],
            "precision": ["bf16", "fp16"],
            "n": [50, 100],
            "decoder.temperature": [0.0, 1.0],
        },
        "experiments": [
            {
                "model": LLAMA, "backend": "pytorch", "precision": "fp32", "n": 25,
                "decoder": {"preset": "deterministic"},
                "pytorch": {"batch_size": 8, "attn_implementation": "flash_attention_2"},
            }
        ],
        "runners": {"pytorch": "local", "vllm": "docker"},
        "execution": {
            "n_cycles": 3, "cycle_order": "interleaved", "experiment_gap_seconds": 10.0,
            "cycle_gap_seconds": 30.0, "skip_preflight": False,
        },
    }  # fmt: skip
    study = load(tmp_path, data)
    grid = list(
        itertools.product([LLAMA, QWEN], ["pytorch", "vllm"], ["bf16", "fp16"], [50, 100], [0, 1])
    )
    expected = [(m, b, p, n, float(t)) for m, b, p, n, t in grid] + [
        (LLAMA, "pytorch", "fp32", 25, 0.0)
    ]
    got = rows(study, "model", "backend", "precision", "n_prompts", "decoder.temperature")
    assert got == expected and not dropped(study)
    explicit = study.points[-1].config
    assert (explicit.batch_size, explicit.pytorch.attn_implementation) == (8, "flash_attention_2")
    assert explicit.decoder.do_sample is False
    first = study.points[0].config
    assert (first.dataset, first.max_input_tokens, first.warmup.runs) == ("aienergyscore", 512, 3)
    assert (first.decoder.seed, first.energy.source) == (42, "auto")
    config = study.config
    assert (config.cycles.n, config.cycles.order, config.gap_seconds) == (3, "interleaved", 10.0)
    assert config.runners == {"pytorch": "local", "vllm": "docker"}
    (note,) = [m for m in study.caught if "not applied" in m]  # type: ignore[attr-defined]
    assert "cycle_gap_seconds" in note and "warmup.thermal_floor_seconds" in note


def test_realistic_study_18_points_with_the_scoped_batch_size_axis(tmp_path: Path) -> None:
    """examples/study-realistic.yaml: two models × three precisions × pytorch.batch_size."""
    data = {
        "name": "model-precision-comparison",
        **COMMON,
        "n": 50,
        "backend": "pytorch",
        "decoder": {"preset": "deterministic"},
        "baseline": {"enabled": True, "duration_seconds": 30.0},
        "sweep": {
            "model": [LLAMA, QWEN],
            "precision": ["bf16", "fp16", "fp32"],
            "pytorch.batch_size": [1, 4, 8],
        },
        "runners": {"pytorch": "local"},
        "execution": {"n_cycles": 3, "cycle_order": "interleaved", "experiment_gap_seconds": 5.0},
    }
    study = load(tmp_path, data)
    expected = list(itertools.product([LLAMA, QWEN], ["bf16", "fp16", "fp32"], [1, 4, 8]))
    assert rows(study, "model", "precision", "batch_size") == expected
    first = study.points[0].config
    assert (first.n_prompts, first.baseline.seconds, first.decoder.temperature) == (50, 30.0, 0.0)


def test_cross_backend_study_drops_the_tensorrt_points_with_their_reason(tmp_path: Path) -> None:
    """examples/study-cross-backend.yaml: backend × precision; TensorRT-LLM is not ours."""
    data = {
        "name": "cross-backend-comparison",
        "model": LLAMA,
        **COMMON,
        "n": 50,
        "decoder": {"preset": "deterministic"},
        "baseline": {"enabled": True, "duration_seconds": 30.0},
        "sweep": {"backend": ["pytorch", "vllm", "tensorrt"], "precision": ["bf16", "fp16"]},
        "runners": {"pytorch": "local", "vllm": "docker", "tensorrt": "docker"},
        "execution": {"n_cycles": 3, "cycle_order": "interleaved"},
    }
    study = load(tmp_path, data)
    assert rows(study, "backend", "precision") == [
        ("pytorch", "bf16"), ("pytorch", "fp16"), ("vllm", "bf16"), ("vllm", "fp16"),
    ]  # fmt: skip
    reasons = dropped(study)
    assert len(reasons) == 2 and all("'tensorrt'" in r for r in reasons)
    assert study.config.runners == {"pytorch": "local", "vllm": "docker"}


def test_docker_test_study_two_backends_in_docker(tmp_path: Path) -> None:
    """examples/study-docker-test.yaml: the two-backend study of the seed's third case."""
    data = {
        "name": "docker-display-test",
        "model": "gpt2",
        "dataset": "aienergyscore",
        "n": 10,
        "max_output_tokens": 50,
        "warmup": {"enabled": True, "n_warmup": 2},
        "baseline": {"enabled": True, "duration_seconds": 10.0},
        "sweep": {"backend": ["pytorch", "vllm"]},
        "runners": {"pytorch": "docker", "vllm": "docker"},
        "execution": {
            "n_cycles": 1, "cycle_order": "sequential", "experiment_gap_seconds": 5.0,
        },
    }  # fmt: skip
    study = load(tmp_path, data)
    assert rows(study, "model", "backend", "n_prompts", "warmup.runs", "baseline.seconds") == [
        ("gpt2", "pytorch", 10, 2, 10.0),
        ("gpt2", "vllm", 10, 2, 10.0),
    ]
    assert study.config.runners == {"pytorch": "docker", "vllm": "docker"}


MULTI_EXPLICIT: list[dict[str, Any]] = [
    *(
        {"backend": "pytorch", "precision": "bf16", "pytorch": {
            "batch_size": 4, "torch_compile": True, "torch_compile_mode": mode,
            "torch_compile_backend": "inductor", "device_map": "auto", "trust_remote_code": True}}
        for mode in ("default", "reduce-overhead", "max-autotune")
    ),
    {"backend": "pytorch", "precision": "fp16", "pytorch": {
        "batch_size": 4, "load_in_8bit": True, "device_map": "auto", "trust_remote_code": True}},
    {"backend": "pytorch", "precision": "fp16", "pytorch": {
        "batch_size": 4, "load_in_4bit": True, "bnb_4bit_compute_dtype": "float16",
        "bnb_4bit_quant_type": "nf4", "device_map": "auto", "trust_remote_code": True}},
    {"backend": "pytorch", "precision": "fp16", "pytorch": {
        "batch_size": 4, "load_in_4bit": True, "bnb_4bit_compute_dtype": "bfloat16",
        "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True, "device_map": "auto",
        "trust_remote_code": True}},
    {"backend": "pytorch", "precision": "bf16", "decoder": {"temperature": 0.0, "do_sample": False},
     "pytorch": {"batch_size": 4, "num_beams": 4, "early_stopping": True, "length_penalty": 1.0,
                 "device_map": "auto", "trust_remote_code": True}},
    {"backend": "pytorch", "precision": "bf16", "pytorch": {
        "batch_size": 1, "prompt_lookup_num_tokens": 3, "device_map": "auto",
        "trust_remote_code": True}},
    {"backend": "pytorch", "precision": "bf16", "pytorch": {
        "batch_size": 4, "use_cache": True, "cache_implementation": "static",
        "device_map": "auto", "trust_remote_code": True}},
    {"backend": "pytorch", "precision": "fp32", "pytorch": {
        "batch_size": 4, "device_map": "auto", "trust_remote_code": True}},
    *(
        {"backend": "vllm", "precision": "bf16", "vllm": {"engine": {
            flag: value, "gpu_memory_utilization": 0.9}}}
        for flag, value in (
            ("enable_prefix_caching", True), ("enable_prefix_caching", False),
            ("block_size", 8), ("block_size", 32),
        )
    ),
    {"backend": "vllm", "precision": "bf16", "decoder": {"temperature": 0.0, "do_sample": False},
     "vllm": {"beam_search": {"beam_width": 4, "early_stopping": True, "length_penalty": 1.0}}},
    {"backend": "vllm", "precision": "bf16", "decoder": {"temperature": 0.8, "do_sample": True},
     "vllm": {"sampling": {"presence_penalty": 0.6, "frequency_penalty": 0.6}}},
]  # fmt: skip


def test_multi_backend_study_crosses_each_backend_only_with_the_universal_axes(
    tmp_path: Path,
) -> None:
    """configs/examples/study-multi-backend.yaml: 24 pytorch + 72 vLLM sweep points and 16
    explicit ones; the explicit entries that need settings llem_nb lacks are dropped."""
    data = {
        "name": "multi-backend-full-parameter-space",
        "model": LLAMA,
        **COMMON,
        "n": 50,
        "decoder": {"preset": "deterministic"},
        "baseline": {"enabled": True, "duration_seconds": 30.0},
        "energy": {"backend": "auto"},
        "sweep": {
            "precision": ["bf16", "fp16"],
            "pytorch.batch_size": [1, 4, 8, 16],
            "pytorch.attn_implementation": ["sdpa", "flash_attention_2", "eager"],
            "vllm.engine.gpu_memory_utilization": [0.7, 0.85, 0.95],
            "vllm.engine.enforce_eager": [True, False],
            "vllm.engine.max_num_seqs": [64, 128, 256],
            "vllm.engine.enable_chunked_prefill": [True, False],
        },
        "experiments": [{"model": LLAMA, "n": 50, **entry} for entry in MULTI_EXPLICIT],
        "runners": {"pytorch": "docker", "vllm": "docker"},
        "execution": {"n_cycles": 3, "cycle_order": "interleaved"},
    }
    study = load(tmp_path, data)
    points = [p.config for p in study.points]
    torch_grid = list(
        itertools.product(["bf16", "fp16"], [1, 4, 8, 16], ["sdpa", "flash_attention_2", "eager"])
    )
    assert [(c.precision, c.batch_size, c.pytorch.attn_implementation) for c in points[:24]] == (
        torch_grid
    )
    vllm_grid = list(
        itertools.product(
            ["bf16", "fp16"], [0.7, 0.85, 0.95], [True, False], [64, 128, 256], [True, False]
        )
    )
    engine = [c.vllm.engine for c in points[24:96]]
    assert [
        (c.precision, e.gpu_memory_utilization, e.enforce_eager, e.max_num_seqs,
         e.enable_chunked_prefill)
        for c, e in zip(points[24:96], engine, strict=True)
    ] == vllm_grid  # fmt: skip
    assert {c.backend for c in points[24:96]} == {"vllm"}
    explicit = points[96:]
    assert [c.backend for c in explicit] == ["vllm"] * 5
    assert [c.vllm.engine.block_size for c in explicit[:4]] == [None, None, 8, 32]
    assert explicit[4].vllm.sampling.presence_penalty == 0.6 and explicit[4].decoder.sampling
    reasons = dropped(study)
    assert len(reasons) == 11
    assert sum("trust_remote_code" in r or "torch_compile_mode" in r for r in reasons) >= 9
    assert any("beam_search" in r for r in reasons)


def test_vllm_and_pytorch_studies_keep_their_sweeps_and_drop_what_cannot_run(
    tmp_path: Path,
) -> None:
    """configs/examples/study-vllm.yaml and study-pytorch.yaml, with two explicit entries each."""
    fixed = {"model": QWEN, "n": 50, "dataset": "aienergyscore", "dataset_order": "interleaved",
             "random_seed": 42, "max_input_tokens": 512, "max_output_tokens": 256,
             "energy": {"backend": "auto"}, "decoder": {"preset": "deterministic"},
             "baseline": {"enabled": True, "duration_seconds": 30.0},
             "warmup": {"enabled": True, "n_warmup": 3, "thermal_floor_seconds": 30.0}}  # fmt: skip
    vllm = load(
        tmp_path,
        {
            "name": "vllm-full-parameter-space",
            **fixed,
            "backend": "vllm",
            "sweep": {
                "precision": ["bf16", "fp16"],
                "vllm.engine.gpu_memory_utilization": [0.7, 0.85, 0.95],
                "vllm.engine.enforce_eager": [True, False],
                "vllm.engine.max_num_seqs": [64, 128, 256],
                "vllm.engine.enable_chunked_prefill": [True, False],
            },
            "experiments": [
                {"vllm": {"engine": {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.9}}},
                {"vllm": {"engine": {"kv_cache_dtype": "fp8", "gpu_memory_utilization": 0.9}}},
            ],
            "runners": {"vllm": "docker"},
        },
        "vllm.yaml",
    )
    assert len(vllm.points) == 74 and not dropped(vllm)
    assert vllm.points[-2].config.vllm.engine.tensor_parallel_size == 2
    torch = load(
        tmp_path,
        {
            "name": "pytorch-full-parameter-space",
            **fixed,
            "backend": "pytorch",
            "precision": "bf16",
            "sweep": {
                "precision": ["bf16", "fp16"],
                "pytorch.batch_size": [1, 4, 8, 16],
                "pytorch.attn_implementation": ["sdpa", "flash_attention_2", "eager"],
            },
            "experiments": [
                {"precision": "fp32", "pytorch": {"batch_size": 4, "device_map": "auto"}},
                {"precision": "fp16", "pytorch": {"batch_size": 4, "load_in_8bit": True}},
            ],
        },
        "torch.yaml",
    )
    assert len(torch.points) == 25
    assert (torch.points[-1].config.precision, torch.points[-1].config.batch_size) == ("fp32", 4)
    assert len(dropped(torch)) == 1 and "load_in_8bit" in dropped(torch)[0]


def test_explicit_entries_alone_give_exactly_those_points(tmp_path: Path) -> None:
    """Without a sweep and without a top-level model: the entries, and no spurious point."""
    data = {
        "name": "compare-backends",
        "experiments": [
            {"model": "gpt2", "backend": "pytorch", "n": 10},
            {"model": "gpt2", "backend": "vllm", "n": 10},
        ],
        "execution": {"n_cycles": 2},
    }
    study = load(tmp_path, data)
    assert rows(study, "backend", "n_prompts") == [("pytorch", 10), ("vllm", 10)]
    assert not study.invalid and not dropped(study)
    ours = StudyConfig.load(
        {"name": "x", "experiments": [{"model": "a"}, {"model": "b", "batch_size": 2}]}
    )
    points, invalid = expand(ours)
    assert [p.config.model for p in points] == ["a", "b"] and invalid == []


def test_a_backend_list_without_a_sweep_is_one_point_per_backend(tmp_path: Path) -> None:
    data = {"name": "two", "model": "gpt2", "backend": ["pytorch", "vllm"], "vllm": {"batching": "static"}}
    study = load(tmp_path, data)
    assert rows(study, "backend", "vllm.batching") == [("pytorch", "continuous"), ("vllm", "static")]


def test_a_top_level_model_with_explicit_entries_is_one_more_point_first(tmp_path: Path) -> None:
    data = {"name": "m", "model": "gpt2", "experiments": [{"precision": "fp16"}]}
    assert rows(load(tmp_path, data), "precision") == [("bf16",), ("fp16",)]


def test_base_is_a_file_relative_to_the_study_and_inline_fields_win(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "base.yaml").write_text(
        yaml.safe_dump({"model": "gpt2", "n": 7, "precision": "fp16", "sweep": {"n": [1, 2]}})
    )
    data = {"name": "b", "base": "base.yaml", "precision": "fp32", "sweep": {"n": [3, 4]}}
    study = load(tmp_path / "conf", data)
    assert rows(study, "model", "precision", "n_prompts") == [("gpt2", "fp32", 3), ("gpt2", "fp32", 4)]
    missing = {"name": "b", "base": "nowhere.yaml", "model": "gpt2"}
    with pytest.raises(ConfigError, match=r"base file .*conf/nowhere\.yaml' does not exist"):
        load(tmp_path / "conf", missing, "other.yaml")


def test_our_layout_may_name_its_base_file_too(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"model": "m", "batch_size": 2}))
    data = {"name": "ours", "base": "base.yaml", "sweep": {"precision": ["fp16"]}, "cycles": {"n": 2}}
    study = load(tmp_path, data)
    assert rows(study, "model", "batch_size", "precision") == [("m", 2, "fp16")]


def test_a_missing_study_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"study file .*absent\.yaml' does not exist") as info:
        Study.from_yaml(tmp_path / "absent.yaml")
    assert "existing study file" in info.value.fix


def test_unknown_top_level_keys_still_say_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'sweep'"):
        load(tmp_path, {"name": "x", "base": {"model": "m"}, "swep": {"batch_size": [1]}})
    with pytest.raises(ConfigError, match="none of the study's 1 points can run here"):
        load(tmp_path, {"name": "x", "model": "m", "batchsize": 4})
    with pytest.raises(ConfigError, match="execution.n_cycle"):
        load(tmp_path, {"name": "x", "model": "m", "execution": {"n_cycle": 2}})
