"""The GPU check's models: the tiny test Llama, and a ~1B-parameter random-init Llama built
from a ``LlamaConfig`` on the GPU (random weights: the check measures the path, not a model's
quality). Nothing is downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

BIG_LLAMA: dict[str, Any] = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
}
FAKE_BIG_LLAMA: dict[str, Any] = {
    **BIG_LLAMA,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
}


def build_llama(directory: Path, tokenizer_dir: Path, shape: dict[str, Any], device: str) -> Path:
    """A random-init Llama of ``shape`` with ``tokenizer_dir``'s tokenizer, saved in bf16."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    config = LlamaConfig(**shape, tie_word_embeddings=False, **ids)
    torch.manual_seed(0)
    with torch.device(device):
        model: Any = LlamaForCausalLM(config)
    model = model.to(torch.bfloat16).eval()
    model.generation_config = GenerationConfig(do_sample=False, **ids)
    model.save_pretrained(directory)
    for item in tokenizer_dir.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(item, directory / item.name)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return directory
