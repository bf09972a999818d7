"""Side-effecting helpers of the vLLM backend: GPU count, the HF tokenizer, vLLM's teardown."""

from __future__ import annotations

from typing import Any

from llem_nb.backends._gpu_place import nvml_visible_count
from llem_nb.energy.device import Nvml
from llem_nb.errors import BackendError, MeterError


def visible_gpu_count(nvml: Nvml | None = None) -> int:
    """GPUs this process may use, by NVML; 0 with no NVIDIA driver, or where
    ``CUDA_VISIBLE_DEVICES`` names an entry NVML cannot place."""
    try:
        return nvml_visible_count(nvml)
    except MeterError:
        return 0


def hf_tokenizer(engine_kwargs: dict[str, Any]) -> Any:
    """The tokenizer the PyTorch backend would load for this model (right truncation)."""
    from transformers import AutoTokenizer

    path = engine_kwargs.get("tokenizer") or engine_kwargs["model"]
    remote = bool(engine_kwargs.get("trust_remote_code", False))
    try:
        return AutoTokenizer.from_pretrained(
            path, padding_side="left", local_files_only=True, trust_remote_code=remote
        )
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"could not load the tokenizer of {path}: {exc}",
            fix="point model (or vllm.engine.tokenizer) at a directory with tokenizer files",
        ) from exc


def cleanup_distributed() -> None:
    """vLLM's own teardown of its distributed state and caches, where the version has it."""
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
    except ImportError:
        return
    cleanup_dist_env_and_memory()
