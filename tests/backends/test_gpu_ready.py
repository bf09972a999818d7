"""Issue 24: what would skew numbers on a first GPU host, pinned without a GPU.

The NVML simulator stands in for the driver and ``FakeCuda`` (the GPU check's) for
``torch.cuda``, injected, never patched in: a CUDA device list built the way CUDA builds it,
with free memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from llem_nb.backends import _gpu_place, _hf, _vllm_args
from llem_nb.backends._gpu_place import placement
from llem_nb.backends.base import GenerationOutput
from llem_nb.backends.models import tiny_model
from llem_nb.backends.pytorch import PytorchBackend, _ordinals
from llem_nb.backends.vllm import VllmBackend
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.errors import ConfigError
from llem_nb.gpu_check.fake_cuda import GIB
from llem_nb.testing import FakeGpu, FakeNvml
from llem_nb.testing.vllm import fake_vllm
from tests.backends.test_vllm import UUIDS, _nvml, cuda_view


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("ready") / "tiny")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


def _config(model: Path, **fields: Any) -> ExperimentConfig:
    data: dict[str, Any] = {"model": str(model), "backend": "pytorch", "gpus": "all"}
    data.update(fields)
    return validate_experiment(data)


# ------------------------------------------------------------------ 4: gpus="all" → one GPU


def test_all_gpus_takes_one_gpu_when_the_model_fits(model_dir: Path) -> None:
    cuda = cuda_view(free_gib=70)
    ordinals, note = placement(_config(model_dir), model_dir, [0, 1, 2, 3], cuda)
    assert ordinals == [0]
    assert note is not None and "1 of 4 GPUs" in note


def test_all_gpus_spreads_a_model_that_does_not_fit_one(model_dir: Path) -> None:
    size = _gpu_place.weights_bytes(model_dir, 2)
    cuda = cuda_view(free_gib=size / GIB)
    ordinals, note = placement(_config(model_dir), model_dir, [0, 1, 2, 3], cuda)
    assert ordinals == [0, 1, 2, 3]
    assert note is not None and "do not fit one GPU" in note


def test_weights_bytes_scale_from_the_stored_dtype(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"torch_dtype": "float32"}')
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 4000)
    assert _gpu_place.weights_bytes(tmp_path, 2) == 2000


# ------------------------------------------------------------------ 5: no silent CPU fallback


def test_all_gpus_with_gpus_torch_cannot_use_is_refused(model_dir: Path) -> None:
    nvml = FakeNvml([FakeGpu(uuid=u) for u in UUIDS[:2]])
    with pytest.raises(ConfigError, match="NVML sees 2 GPU") as info:
        _ordinals(_config(model_dir), cuda_view(available=False), nvml)
    assert info.value.field == "gpus"


def test_all_gpus_without_any_gpu_is_the_cpu(model_dir: Path) -> None:
    assert _ordinals(_config(model_dir), cuda_view(available=False), FakeNvml([])) == []


# ------------------------------------------------------------------ 8: max_memory from free memory


def test_max_memory_is_free_memory_less_a_margin() -> None:
    cuda = cuda_view(free_gib=40)
    assert _gpu_place.max_memory(cuda, [0, 1], margin=0.1) == {
        0: int(40 * GIB * 0.9),
        1: int(40 * GIB * 0.9),
    }


# ------------------------------------------------------------------ 9: NVML index ≠ CUDA ordinal


def test_device_order_is_pinned_to_pci_before_cuda_starts(model_dir: Path) -> None:
    cuda = cuda_view()
    assert _ordinals(_config(model_dir, gpus=[1]), cuda, _nvml()) == [1]
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert cuda.get_device_properties(1).uuid == UUIDS[1].removeprefix("GPU-")


def test_nvml_index_maps_by_uuid_when_cuda_started_fastest_first(model_dir: Path) -> None:
    """CUDA already numbered the GPUs fastest first ([2, 0, 3, 1]): NVML GPU 1 is ordinal 3."""
    cuda = cuda_view(initialized=True)
    assert _ordinals(_config(model_dir, gpus=[1]), cuda, _nvml()) == [3]
    assert "CUDA_DEVICE_ORDER" not in os.environ


def test_assigned_ordinals_maps_nvml_indices_through_uuids() -> None:
    fastest = [UUIDS[i] for i in (2, 0, 3, 1)]
    assert _hf.assigned_ordinals([0, 2], 4, None, fastest, UUIDS) == [1, 0]


# ------------------------------------------------------------------ 6: prefix caching off


def test_vllm_prefix_caching_is_off_by_default_and_recorded(model_dir: Path) -> None:
    def kwargs(**engine: Any) -> dict[str, Any]:
        data = {"model": str(model_dir), "backend": "vllm", "vllm": {"engine": engine}}
        return _vllm_args.engine_kwargs(validate_experiment(data), model_dir, on_cpu=False)

    assert kwargs()["enable_prefix_caching"] is False
    assert kwargs(enable_prefix_caching=True)["enable_prefix_caching"] is True


# ------------------------------------------------------------------ 10: vLLM's GPU list


def test_vllm_gpu_list_follows_the_current_cuda_visible_devices(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's device list was built (all four GPUs) before a runner set
    CUDA_VISIBLE_DEVICES=3,1; the engine runs on 3 and 1, and the meter must follow."""
    cuda = cuda_view(initialized=True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    config = validate_experiment(
        {
            "model": str(model_dir),
            "backend": "vllm",
            "gpus": "all",
            "vllm": {"engine": {"tensor_parallel_size": 2}},
        }
    )
    with fake_vllm(cpu=False) as fake:
        backend = VllmBackend(config, clock=fake.clock, nvml=_nvml(), cuda=cuda)
        backend.load()
        try:
            assert backend.gpu_indices() == [3, 1]
            assert backend.environment()["engine_args"]["enable_prefix_caching"] is False
        finally:
            backend.unload()
    assert "CUDA_DEVICE_ORDER" not in os.environ


# ------------------------------------------------------------------ 7: torch_compile shapes


def test_shape_batches_cover_every_padded_length_and_the_short_last_batch() -> None:
    assert [list(r) for r in _hf.shape_batches([5, 9, 7, 3, 3], 2)] == [[0, 1], [2, 3], [4]]
    assert [list(r) for r in _hf.shape_batches([5, 9, 9, 4, 5, 9], 2)] == [[0, 1]]


class RecordingBackend(PytorchBackend):
    """The PyTorch backend with ``generate`` recording the batches it is given."""

    def generate(self, prompts: list[str]) -> GenerationOutput:
        self.batches.append(list(prompts))
        return GenerationOutput(requests=[])


@pytest.mark.parametrize(("compiled", "expected"), [(False, 1), (True, 3)])
def test_torch_compile_warm_up_runs_every_distinct_shape(
    model_dir: Path, compiled: bool, expected: int
) -> None:
    from transformers import AutoTokenizer

    words = ["a", "a b c d e f g h", "a b c", "a b c d", "a"]
    config = _config(model_dir, gpus=0, batch_size=2, pytorch={"torch_compile": compiled})
    backend = RecordingBackend(config)
    backend.batches = []
    backend._model = object()
    backend._tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    backend.warmup(words)
    assert len(backend.batches) == expected
    if compiled:
        assert backend.batches[-1] == ["a"]  # the short last batch is a shape of its own
