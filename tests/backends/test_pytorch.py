"""The PyTorch backend on the tiny offline model: exact token counts, latencies, preflight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llem_nb.backends import _hf
from llem_nb.backends.base import GenerationOutput, get_backend
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.nvml_devices import nvml_indices_for
from llem_nb.errors import BackendError, ConfigError
from llem_nb.testing import FakeNvml

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from llem_nb.backends.pytorch import PytorchBackend  # noqa: E402

PROMPTS = [
    "Hi",
    "The energy of a graphics card is measured in joules",
    "Bread",
    "Where are you going? asked the fox, and the hare ran to the river",
    "Stars are born",
]
ENDS_WITH_A = "The committee met on Thursday"
ENDS_WITH_T = "My grandmother kept bees"
PLAIN = "To bake bread, mix flour"


def _exp(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(fields)


def _config(model: Path, **overrides: Any) -> ExperimentConfig:
    data: dict[str, Any] = {
        "model": str(model),
        "precision": "fp32",
        "gpus": 0,
        "batch_size": 8,
        "max_output_tokens": 12,
        "pytorch": {"num_threads": 1},
    }
    data.update(overrides)
    return ExperimentConfig.model_validate(data)


def _run(model: Path, prompts: list[str], **overrides: Any) -> GenerationOutput:
    backend = PytorchBackend(_config(model, **overrides))
    backend.load()
    try:
        return backend.generate(prompts)
    finally:
        backend.unload()


def _tokenizer(model: Path) -> Any:
    return transformers.AutoTokenizer.from_pretrained(model, local_files_only=True)


def _reference_counts(model: Path, prompts: list[str], max_new: int) -> list[int]:
    """Each prompt alone, unpadded: generated tokens up to and including the first EOS."""
    tok = _tokenizer(model)
    lm = transformers.AutoModelForCausalLM.from_pretrained(model, local_files_only=True).eval()
    counts = []
    for prompt in prompts:
        enc = tok(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = lm.generate(**enc, max_new_tokens=max_new, do_sample=False)
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        counts.append(new.index(tok.eos_token_id) + 1 if tok.eos_token_id in new else len(new))
    return counts


@pytest.fixture(scope="module")
def eos_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model rewired: after token A it says T, after T it says EOS, else never EOS.

    Hidden dims 0 and 1 carry "last token was A" and "last token was T": only the
    embeddings of A and T write them, no layer writes them, and only the lm_head
    rows of T and EOS read them.
    """
    tok = _tokenizer(tiny_model_dir)
    lm = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    a = tok(ENDS_WITH_A).input_ids[-1]
    t = tok(ENDS_WITH_T).input_ids[-1]
    assert len({a, t, tok(PLAIN).input_ids[-1], tok.eos_token_id}) == 4
    with torch.no_grad():
        embed, head = lm.get_input_embeddings().weight, lm.lm_head.weight
        embed[:, :2] = 0.0
        head[:, :2] = 0.0
        for layer in lm.model.layers:
            layer.self_attn.o_proj.weight[:2, :] = 0.0
            layer.mlp.down_proj.weight[:2, :] = 0.0
        embed[a, 0] = embed[t, 1] = 10.0
        head[t] = 0.0
        head[t, 0] = 10.0
        head[tok.eos_token_id] = 0.0
        head[tok.eos_token_id, 1] = 10.0
    out = tmp_path_factory.mktemp("eos-model")
    lm.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_registry_finds_the_backend() -> None:
    assert get_backend("pytorch") is PytorchBackend


def test_token_counts_exclude_padding_and_match_unbatched_runs(tiny_model_dir: Path) -> None:
    out = _run(tiny_model_dir, PROMPTS, max_output_tokens=10)
    tok = _tokenizer(tiny_model_dir)
    hand = [len(tok(p).input_ids) for p in PROMPTS]
    assert len(set(hand)) > 2
    assert [r.input_tokens for r in out.requests] == hand
    assert [r.output_tokens for r in out.requests] == _reference_counts(tiny_model_dir, PROMPTS, 10)
    assert out.batching == "static"


def test_output_stops_at_the_first_eos(eos_model_dir: Path) -> None:
    prompts = [PLAIN, ENDS_WITH_A, ENDS_WITH_T]
    out = _run(eos_model_dir, prompts, max_output_tokens=9)
    assert [r.output_tokens for r in out.requests] == [9, 2, 1]
    assert [r.output_tokens for r in out.requests] == _reference_counts(eos_model_dir, prompts, 9)
    plain, early, immediate = out.requests
    tok = _tokenizer(eos_model_dir)
    assert early.token_ids is not None and immediate.token_ids is not None
    assert early.token_ids[0] == tok(ENDS_WITH_T).input_ids[-1]
    assert early.token_ids[-1] == tok.eos_token_id
    assert immediate.token_ids == [tok.eos_token_id]
    assert len(early.itl_s) == 1 and immediate.itl_s == []
    assert immediate.ttft_s == pytest.approx(immediate.e2e_s)
    assert immediate.e2e_s < early.e2e_s < plain.e2e_s


def test_prompts_are_truncated_to_max_input_tokens(tiny_model_dir: Path) -> None:
    out = _run(tiny_model_dir, [PROMPTS[1], "Hi"], max_input_tokens=5, max_output_tokens=3)
    assert [r.input_tokens for r in out.requests] == [
        5,
        len(_tokenizer(tiny_model_dir)("Hi").input_ids),
    ]


def test_greedy_decoding_is_reproducible(tiny_model_dir: Path) -> None:
    backend = PytorchBackend(_config(tiny_model_dir, batch_size=2))
    backend.load()
    first, second = backend.generate(PROMPTS), backend.generate(PROMPTS)
    backend.unload()
    key = [(r.output_tokens, r.token_ids) for r in first.requests]
    assert key == [(r.output_tokens, r.token_ids) for r in second.requests]
    again = _run(tiny_model_dir, PROMPTS, batch_size=2)
    assert key == [(r.output_tokens, r.token_ids) for r in again.requests]


def test_sampling_is_reproducible_per_seed(tiny_model_dir: Path) -> None:
    def texts(seed: int) -> list[list[int] | None]:
        decoder = {"temperature": 1.0, "top_k": 40, "top_p": 0.95, "seed": seed}
        return [r.token_ids for r in _run(tiny_model_dir, PROMPTS, decoder=decoder).requests]

    assert texts(7) == texts(7)
    assert texts(7) != texts(8)


def test_latencies_and_phases_per_static_batch(tiny_model_dir: Path) -> None:
    out = _run(tiny_model_dir, PROMPTS, batch_size=2, max_output_tokens=6)
    assert len(out.requests) == len(PROMPTS)
    assert len(out.phases) == 3
    for start, first_token in out.phases:
        assert start < first_token
    assert out.phases[0][1] <= out.phases[1][0] <= out.phases[2][0]
    for r in out.requests:
        assert r.ttft_s is not None and 0 < r.ttft_s <= r.e2e_s
        assert len(r.itl_s) == r.output_tokens - 1
        assert all(gap >= 0 for gap in r.itl_s)
        assert r.ttft_s + sum(r.itl_s) == pytest.approx(r.e2e_s)


def test_cpu_run_reports_no_gpus_and_its_environment(tiny_model_dir: Path) -> None:
    backend = PytorchBackend(_config(tiny_model_dir))
    backend.load()
    assert backend.gpu_indices() == []
    env = backend.environment()
    assert env["device"] == "cpu" and env["dtype"] == "float32"
    assert env["torch"] == torch.__version__ and env["transformers"] == transformers.__version__
    backend.synchronize()
    backend.unload()
    with pytest.raises(BackendError, match="load"):
        backend.generate(["Hi"])


def test_unload_restores_torch_threads(tiny_model_dir: Path) -> None:
    before = torch.get_num_threads()
    backend = PytorchBackend(_config(tiny_model_dir, pytorch={"num_threads": 1}))
    backend.load()
    assert torch.get_num_threads() == 1
    backend.unload()
    assert torch.get_num_threads() == before


# --------------------------------------------------------------------------- preflight


def test_preflight_accepts_the_tiny_model(tiny_model_dir: Path) -> None:
    PytorchBackend.preflight(_config(tiny_model_dir))


@pytest.mark.parametrize("name", ["/no/such/model", "./missing-model", "~/nope/x", "a/b/c"])
def test_preflight_missing_path(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        PytorchBackend.preflight(_exp(model=name, gpus=0))
    assert info.value.field == "model"
    assert "does not exist" in info.value.message


def test_preflight_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json") as info:
        PytorchBackend.preflight(_exp(model=str(tmp_path), gpus=0))
    assert info.value.field == "model"


def test_preflight_uncached_hub_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as info:
        PytorchBackend.preflight(_exp(model="llem-nb-tests/not-cached", gpus=0))
    assert info.value.field == "model"
    assert "local Hugging Face cache" in info.value.message
    assert "download" in info.value.fix


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("gpus", [1, [0]])
def test_preflight_gpus_without_a_gpu(tiny_model_dir: Path, gpus: Any) -> None:
    with pytest.raises(ConfigError) as info:
        PytorchBackend.preflight(_config(tiny_model_dir, gpus=gpus))
    assert info.value.field == "gpus"
    assert "gpus=0" in str(info.value)


# --------------------------------------------------------------------------- helpers


def test_assigned_ordinals() -> None:
    assert _hf.assigned_ordinals("all", 0) == []
    assert _hf.assigned_ordinals("all", 2) == [0, 1]
    assert _hf.assigned_ordinals(0, 4) == []
    assert _hf.assigned_ordinals(2, 4) == [0, 1]
    assert _hf.assigned_ordinals([2, 3], 2, visible=["2", "3"]) == [0, 1]
    assert _hf.assigned_ordinals([3], 2, visible=["1", "3"]) == [1]
    assert _hf.assigned_ordinals([1, 0], 2) == [1, 0]
    assert _hf.assigned_ordinals(["cuda:1"], 2) == [1]
    assert _hf.assigned_ordinals(["GPU-ABC"], 2, uuids=["x", "abc"]) == [1]
    for gpus, count, visible in [(3, 2, None), ([2], 2, ["0", "1"]), (["GPU-zz"], 1, None)]:
        with pytest.raises(ConfigError):
            _hf.assigned_ordinals(gpus, count, visible=visible)


def test_nvml_indices_without_nvml_follow_cuda_visible_devices() -> None:
    no_nvml = FakeNvml(init_error=12)
    assert nvml_indices_for([0, 1], (), None, nvml=no_nvml) == [0, 1]
    assert nvml_indices_for([0, 1], (), "3,5", nvml=no_nvml) == [3, 5]
    assert nvml_indices_for([1], (), "GPU-a,GPU-b", nvml=no_nvml) == [1]


def test_counted_tokens_and_latency_helpers() -> None:
    assert _hf.counted_tokens([[5, 2, 0, 0], [5, 6, 7, 8], [2, 2, 2, 2]], {2}) == [2, 4, 1]
    assert _hf.counted_tokens([[5, 9, 3]], {3, 9}) == [2]
    times = _hf.step_times([1.0, 2.0, 3.5], 3, end=4.0)
    assert times == [1.0, 2.0, 4.0]
    assert _hf.request_latency(times, 0.5, 2) == (0.5, 1.5, [1.0])
    assert _hf.step_times([1.0], 3, end=2.0) == [1.0, 2.0, 2.0]


def test_generation_settings_override_model_defaults() -> None:
    greedy = _hf.generation_settings(_exp(model="m", max_output_tokens=7))
    assert greedy["do_sample"] is False and greedy["max_new_tokens"] == 7
    sampled = _hf.generation_settings(_exp(model="m", decoder={"temperature": 0.7, "top_k": 5}))
    assert sampled["do_sample"] is True
    assert (sampled["temperature"], sampled["top_k"], sampled["top_p"]) == (0.7, 5, 1.0)


# --------------------------------------------------------------------------- reuse


def test_load_key_leaves_out_per_point_settings(tiny_model_dir: Path, monkeypatch) -> None:
    def key(**overrides: Any) -> str | None:
        return PytorchBackend.load_key(_config(tiny_model_dir, **overrides))

    same = key()
    assert key(batch_size=2, max_output_tokens=3, max_input_tokens=9, n_prompts=5) == same
    assert key(decoder={"temperature": 0.7, "top_p": 0.9}, pytorch={"num_threads": 1}) == same
    assert key(pytorch={"num_threads": 1, "use_cache": False}) == same
    assert key(precision="bf16") != same
    assert key(pytorch={"num_threads": 2}) != same
    assert key(pytorch={"num_threads": 1, "attn_implementation": "eager"}) != same
    assert PytorchBackend.load_key(_config(tiny_model_dir.parent)) != same
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert key() != same


def test_a_reconfigured_model_generates_what_a_fresh_load_would(tiny_model_dir: Path) -> None:
    """Switching a loaded model to another point (batch size, decoding, lengths) gives the
    very tokens that loading it for that point gives."""
    target = {
        "batch_size": 2,
        "max_output_tokens": 5,
        "decoder": {"temperature": 0.9, "top_k": 20, "seed": 3},
    }
    kept = PytorchBackend(_config(tiny_model_dir))
    kept.load()
    try:
        kept.generate(PROMPTS)
        kept.reconfigure(_config(tiny_model_dir, **target))
        switched = kept.generate(PROMPTS)
    finally:
        kept.unload()
    fresh = _run(tiny_model_dir, PROMPTS, **target)
    assert [r.token_ids for r in switched.requests] == [r.token_ids for r in fresh.requests]
    assert [r.input_tokens for r in switched.requests] == [r.input_tokens for r in fresh.requests]
    assert len(switched.phases) == 3  # batches of 2
    assert max(r.output_tokens for r in switched.requests) <= 5


def test_rewarm_is_short_and_leaves_the_point_s_settings(tiny_model_dir: Path) -> None:
    backend = PytorchBackend(_config(tiny_model_dir, max_output_tokens=12, batch_size=2))
    backend.load()
    try:
        backend.rewarm(PROMPTS, max_output_tokens=3)
        assert backend.config.max_output_tokens == 12
        assert backend._model.generation_config.max_new_tokens == 12
        out = backend.generate(PROMPTS[:2])
    finally:
        backend.unload()
    assert max(r.output_tokens for r in out.requests) > 3
