"""The PyTorch backend: Hugging Face transformers ``generate`` in static batches.

Token counts are exact (no padding in, nothing after EOS out) and per-request
latencies come from one timestamp per decoding step, taken by a stopping
criterion that does no device work.
"""

from __future__ import annotations

import gc
import importlib.util
import platform
from time import perf_counter
from typing import Any

from llem_nb.backends import _hf
from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput
from llem_nb.config import ExperimentConfig
from llem_nb.errors import BackendError, ConfigError

PYTORCH_FIX = "pip install 'llem_nb[pytorch]' (torch, transformers, accelerate)"
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _require_stack() -> None:
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"the pytorch backend needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed",
            field="backend",
            fix=PYTORCH_FIX,
        )


def _device_uuids(torch: Any, count: int) -> list[str]:
    uuids: list[str] = []
    for i in range(count):
        uuid = getattr(torch.cuda.get_device_properties(i), "uuid", None)
        uuids.append(str(uuid) if uuid is not None else "")
    return uuids


def _ordinals(config: ExperimentConfig) -> list[int]:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    uuids = _device_uuids(torch, count) if isinstance(config.gpus, list) and count else []
    return _hf.assigned_ordinals(config.gpus, count, _hf.cuda_visible(), uuids)


class PytorchBackend(Backend):
    """transformers ``AutoModelForCausalLM.generate`` on CPU, one GPU or several (device_map)."""

    name = "pytorch"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self._model: Any = None
        self._tokenizer: Any = None
        self._ordinals: list[int] = []
        self._input_device: Any = "cpu"
        self._eos_ids: set[int] = set()
        self._threads_before: int | None = None

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        """torch + transformers installed, the model present locally, GPUs present if asked for."""
        _require_stack()
        _hf.resolve_model(config.model)
        _ordinals(config)

    def load(self) -> None:
        _require_stack()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        from llem_nb.models import quiet_progress

        path = _hf.resolve_model(self.config.model)
        self._ordinals = _ordinals(self.config)
        opts = self.config.pytorch
        if opts.num_threads:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(opts.num_threads)
        kwargs: dict[str, Any] = {
            "dtype": getattr(torch, DTYPES[self.config.precision]),
            "local_files_only": True,
        }
        if opts.attn_implementation:
            kwargs["attn_implementation"] = opts.attn_implementation
        if len(self._ordinals) > 1 or (self._ordinals and opts.device_map):
            kwargs["device_map"] = opts.device_map or "auto"
            kwargs["max_memory"] = {
                i: torch.cuda.get_device_properties(i).total_memory for i in self._ordinals
            }
        elif self._ordinals:
            kwargs["device_map"] = {"": self._ordinals[0]}
        try:
            with quiet_progress():
                tokenizer = AutoTokenizer.from_pretrained(
                    path, padding_side="left", local_files_only=True
                )
                model: Any = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (OSError, ValueError, ImportError, RuntimeError) as exc:
            raise BackendError(
                f"could not load {self.config.model!r} from {path}: {exc}",
                fix="check the model directory and the pytorch.* settings "
                "(attn_implementation needs its kernels installed)",
            ) from exc
        model.eval()
        if opts.torch_compile:
            model.forward = torch.compile(model.forward)
        self._eos_ids = self._find_eos(model, tokenizer)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if tokenizer.pad_token_id is None:
            raise BackendError(
                f"the tokenizer of {self.config.model!r} has neither a pad nor an eos token",
                fix="use a model whose tokenizer defines eos_token",
            )
        model.generation_config = GenerationConfig(
            **_hf.generation_settings(self.config),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=model.generation_config.bos_token_id,
            eos_token_id=sorted(self._eos_ids) or None,
        )
        self._input_device = model.get_input_embeddings().weight.device
        self._model, self._tokenizer = model, tokenizer

    @staticmethod
    def _find_eos(model: Any, tokenizer: Any) -> set[int]:
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        if eos is None:
            return set()
        return {int(e) for e in eos} if isinstance(eos, (list, tuple)) else {int(eos)}

    def _loaded(self) -> tuple[Any, Any]:
        if self._model is None:
            raise BackendError("generate() called before load()", fix="call load() first")
        return self._model, self._tokenizer

    def generate(self, prompts: list[str]) -> GenerationOutput:
        """Static batches of ``batch_size`` in prompt order; one RequestOutput per prompt."""
        import torch

        model, tokenizer = self._loaded()
        torch.manual_seed(self.config.decoder.seed)
        size = self.config.batch_size
        result = GenerationOutput(requests=[], batching="static")
        for first in range(0, len(prompts), size):
            batch = prompts[first : first + size]
            start = perf_counter()
            enc = tokenizer(
                batch,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.config.max_input_tokens,
            ).to(self._input_device)
            clock = _hf.StepClock()
            with torch.inference_mode():
                out = model.generate(**enc, stopping_criteria=[clock])
            end = perf_counter()
            new = out[:, enc["input_ids"].shape[1] :].tolist()
            steps = len(new[0]) if new else 0
            times = _hf.step_times(clock.times, steps, end)
            counts = _hf.counted_tokens(new, self._eos_ids)
            inputs = enc["attention_mask"].sum(dim=1).tolist()
            result.phases.append((start, times[0] if times else end))
            for n_in, n_out, row in zip(inputs, counts, new, strict=True):
                ttft, e2e, itl = _hf.request_latency(times, start, n_out)
                result.requests.append(
                    RequestOutput(
                        input_tokens=int(n_in),
                        output_tokens=n_out,
                        e2e_s=e2e,
                        ttft_s=ttft,
                        itl_s=itl,
                        token_ids=row[:n_out],
                    )
                )
        return result

    def decode(self, token_ids: list[int]) -> str:
        _, tokenizer = self._loaded()
        return str(tokenizer.decode(token_ids, skip_special_tokens=True))

    def synchronize(self) -> None:
        if self._ordinals:
            import torch

            for ordinal in self._used_ordinals():
                torch.cuda.synchronize(ordinal)

    def _used_ordinals(self) -> list[int]:
        device_map = getattr(self._model, "hf_device_map", None)
        if isinstance(device_map, dict):
            used = sorted({d for d in device_map.values() if isinstance(d, int)})
            if used:
                return used
        return list(self._ordinals)

    def gpu_indices(self) -> list[int]:
        """NVML indices of the GPUs holding the model (via CUDA_VISIBLE_DEVICES); [] on CPU."""
        if not self._ordinals:
            return []
        return _hf.nvml_indices(self._used_ordinals(), _hf.cuda_visible())

    def environment(self) -> dict[str, Any]:
        import torch
        import transformers

        env: dict[str, Any] = {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "dtype": DTYPES[self.config.precision],
            "torch_threads": torch.get_num_threads(),
        }
        if self._ordinals:
            env["device"] = "cuda"
            env["device_name"] = torch.cuda.get_device_name(self._ordinals[0])
            env["cuda"] = torch.version.cuda
        else:
            env["device"] = "cpu"
            env["device_name"] = platform.processor() or platform.machine()
        if self._model is not None:
            env["attn_implementation"] = getattr(self._model.config, "_attn_implementation", None)
        return env

    def unload(self) -> None:
        """Drop the model, free device memory, give torch back its previous thread count."""
        if self._model is None and self._threads_before is None:
            return
        import torch

        self._model = None
        self._tokenizer = None
        gc.collect()
        if self._ordinals:
            torch.cuda.empty_cache()
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
