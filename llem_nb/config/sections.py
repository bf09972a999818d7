"""The sections of an experiment config: decoding, warm-up, baseline, energy, backends.

Each is a small pydantic model with ``extra="forbid"``; ``llem_nb.config.experiment`` assembles
them into ``ExperimentConfig``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["fp32", "fp16", "bf16"]
EnergySource = Literal["auto", "nvml", "rapl", "estimate", "none"]
EnergyDomain = Literal["gpu", "cpu", "dram"]
CycleOrder = Literal["sequential", "interleaved", "shuffled"]
Reuse = Literal["auto", "never"]

# Fields that do not change what is measured: left out of config_hash.
_NOT_HASHED = frozenset({"timeout_s", "carbon"})
# Nested fields left out too: they decide what a reusing study may skip, not what is measured.
_NOT_HASHED_NESTED: dict[str, set[str]] = {
    "baseline": {"max_age_s"},
    "warmup": {"rewarm_tokens"},
    "energy": {"domains"},
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def plain_paths(value: Any) -> Any:
    """``value`` with every ``os.PathLike`` inside it (mappings, lists) as its string, so a
    ``Path`` is stored, hashed and written to YAML as the text a user would have typed."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: plain_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_paths(v) for v in value)
    return value


class DecoderConfig(_Section):
    """Decoding parameters; ``temperature=0`` means greedy."""

    temperature: float = Field(0.0, ge=0.0)
    do_sample: bool | None = None
    top_k: int = Field(0, ge=0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    seed: int = 0

    @model_validator(mode="after")
    def _sampling_needs_temperature(self) -> DecoderConfig:
        if self.do_sample and self.temperature == 0:
            raise ValueError(
                "decoder.do_sample=true needs decoder.temperature > 0 "
                "(temperature 0 is greedy decoding)"
            )
        return self

    @property
    def sampling(self) -> bool:
        return self.do_sample if self.do_sample is not None else self.temperature > 0


class WarmupConfig(_Section):
    """``fixed``: ``runs`` warm-up batches. ``cv``: at least ``max(runs, window)``, then until
    the latency coefficient of variation over the last ``window`` runs is < ``cv_threshold``,
    at most ``max_runs``."""

    runs: int = Field(1, ge=0, description="warm-up generate calls before the window")
    mode: Literal["fixed", "cv"] = "fixed"
    cv_threshold: float = Field(0.05, gt=0.0, le=1.0, allow_inf_nan=False)
    window: int = Field(5, ge=2, description="runs the CV is computed over")
    max_runs: int = Field(20, ge=1, description="cap on warm-up runs in cv mode")
    rewarm_tokens: int = Field(
        8,
        ge=1,
        description="a reused model's re-warm: one batch at this point's settings, this many "
        "new tokens at most (no re-warm when warm-up is off)",
    )

    @model_validator(mode="after")
    def _cap_covers_window(self) -> WarmupConfig:
        if self.mode == "cv" and self.max_runs < max(self.runs, self.window):
            raise ValueError(
                f"warmup.max_runs={self.max_runs} is below the runs cv mode needs first "
                f"(max(warmup.runs, warmup.window) = {max(self.runs, self.window)}); "
                "raise warmup.max_runs"
            )
        return self


class CooldownConfig(_Section):
    """Wait until every measured GPU is within ``until_within_c`` °C of idle, at most ``max_s``.

    Used twice: ``ExperimentConfig.cooldown`` after warm-up, before the baseline and window
    (idle = the GPU's temperature before the model was loaded); ``StudyConfig.cooldown``
    between experiments (idle = its temperature when the run starts). ``idle_c`` fixes the
    idle reference instead. None disables; what happened is recorded either way.
    """

    until_within_c: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    max_s: float = Field(60.0, ge=0.0, allow_inf_nan=False, description="longest wait")
    idle_c: float | None = Field(None, allow_inf_nan=False, description="idle °C; None: measure")
    poll_s: float = Field(0.5, gt=0.0, allow_inf_nan=False, description="temperature poll period")


def window_cooldown() -> CooldownConfig:
    """The cooldown inside an experiment: at most 60 s, polled every 0.5 s."""
    return CooldownConfig(max_s=60.0, poll_s=0.5)


def study_cooldown() -> CooldownConfig:
    """The cooldown between experiments: at most 300 s, polled every second."""
    return CooldownConfig(max_s=300.0, poll_s=1.0)


class BaselineConfig(_Section):
    seconds: float = Field(
        5.0,
        ge=0.0,
        allow_inf_nan=False,
        description="idle power measured before the window; 0 disables",
    )
    max_age_s: float = Field(
        300.0,
        ge=0.0,
        allow_inf_nan=False,
        description="reuse an idle baseline measured on the same devices, with the same model "
        "loaded, less than this long ago; 0: measure before every window",
    )


class MeasurementConfig(_Section):
    """The measured window. ``min_window_s``: repeat the prompt set until the window lasts at
    least this long (None: 10 s when the experiment uses GPUs, off on the CPU; 0: off).
    Short windows are dominated by their edges and by the meter's time resolution; every
    repeat's tokens are counted and the repeat count is recorded."""

    min_window_s: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    max_repeats: int = Field(1000, ge=1, description="cap on prompt-set repeats in one window")

    def target_window_s(self, uses_gpu: bool) -> float:
        if self.min_window_s is not None:
            return self.min_window_s
        return GPU_MIN_WINDOW_S if uses_gpu else 0.0


GPU_MIN_WINDOW_S = 10.0


class CarbonConfig(_Section):
    """Grid carbon intensity and data-centre PUE for ``co2_g``; never fetched from a network."""

    grid_gco2_per_kwh: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    pue: float = Field(1.0, ge=1.0, allow_inf_nan=False, description="power usage effectiveness")


class EnergyConfig(_Section):
    source: EnergySource = "auto"
    poll_interval_s: float = Field(
        0.05, ge=0.001, allow_inf_nan=False, description="power polling period (>= 1 ms)"
    )
    cpu_w_per_core: float = Field(
        10.0, gt=0.0, description="EstimateMeter model: watts per fully busy core"
    )
    domains: list[EnergyDomain] | None = Field(
        None,
        description="energy boundary: any of gpu, cpu (RAPL package), dram (RAPL); "
        "None: every domain this host can read",
    )


class PytorchConfig(_Section):
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None
    torch_compile: bool = False
    device_map: str | None = None
    use_cache: bool = True
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads")


VLLM_ENGINE_ARGS: dict[str, str] = {
    "gpu_memory_utilization": "fraction of GPU memory vLLM may take, in (0, 1]",
    "max_num_seqs": "most sequences in one scheduler step",
    "max_num_batched_tokens": "most tokens in one scheduler step",
    "max_model_len": "context length the engine plans for",
    "enforce_eager": "disable CUDA graphs",
    "enable_prefix_caching": "reuse KV blocks of shared prefixes",
    "enable_chunked_prefill": "split long prefills into chunks",
    "kv_cache_dtype": "KV cache precision",
    "block_size": "KV cache block size in tokens",
    "quantization": "weight quantization method",
    "tensor_parallel_size": "GPUs one model is split across",
    "swap_space": "CPU swap space per GPU in GiB",
    "seed": "engine seed",
}

VLLM_RESERVED_ARGS: dict[str, str] = {
    "model": "set the experiment's model instead",
    "dtype": "set precision (fp32, fp16, bf16) instead",
}


class VllmEngineConfig(BaseModel):
    """Arguments to ``vllm.LLM``; known ones are typed, others pass through."""

    model_config = ConfigDict(extra="allow", validate_default=True)

    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0)
    max_num_seqs: int | None = Field(None, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    enforce_eager: bool | None = None
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    kv_cache_dtype: str | None = None
    block_size: int | None = Field(None, ge=1)
    quantization: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    swap_space: float | None = Field(None, ge=0.0)
    seed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _near_misses(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key in VLLM_ENGINE_ARGS:
                    continue
                if key in VLLM_RESERVED_ARGS:
                    raise ValueError(
                        f"vllm.engine.{key} is set by llem_nb: {VLLM_RESERVED_ARGS[key]}"
                    )
                close = difflib.get_close_matches(str(key), list(VLLM_ENGINE_ARGS), n=1, cutoff=0.8)
                if close:
                    raise ValueError(f"unknown vllm engine arg {key!r}; did you mean {close[0]!r}?")
        return data

    @property
    def passthrough(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class VllmSamplingConfig(_Section):
    n: int = Field(1, ge=1, description="completions per prompt (n > 1 needs sampling)")
    min_tokens: int = Field(0, ge=0)
    ignore_eos: bool = False
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)


class VllmConfig(_Section):
    engine: VllmEngineConfig = Field(default_factory=VllmEngineConfig)
    sampling: VllmSamplingConfig = Field(default_factory=VllmSamplingConfig)
    batching: Literal["continuous", "static"] = Field(
        "continuous",
        description="continuous: one generate over all prompts, batch_size prompts in flight; "
        "static: groups of batch_size prompts, each run to completion",
    )


GpuSpec = Literal["all"] | int | list[int | str]
