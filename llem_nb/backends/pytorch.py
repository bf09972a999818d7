"""The PyTorch backend: Hugging Face transformers ``generate`` in static batches.

Token counts are exact (no padding in, nothing after EOS out) and per-request
latencies come from one device-synchronised timestamp per decoding step
(``_step_timing``: CUDA events on a GPU, converted after ``generate``; the host clock on
the CPU), marked by a stopping criterion that does no device work and never syncs.
TTFT runs from the batch's start (its requests' submission, before tokenisation) to
the first token's completion on the device. ``phase_marker`` (set by the Harness for
the window) is told each batch's start and, once the device has finished it, its first
token, so the meter can read its energy counter near those boundaries;
``GenerationOutput.phases`` holds the device-synchronised intervals.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import platform
from collections.abc import Callable
from typing import Any

from llem_nb.backends import _gpu_place, _hf
from llem_nb.backends._step_timing import StepClock, StepTimer, step_timer_for
from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput, key_of
from llem_nb.backends.deadline import StopAtDeadline
from llem_nb.backends.deadline import passed as deadline_passed
from llem_nb.backends.models import quiet_progress
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.nvml_devices import check_visible_devices, nvml_indices_for
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


def _ordinals(config: ExperimentConfig, cuda: Any = None, nvml: Any = None) -> list[int]:
    """Torch ordinals for ``config.gpus``. Pins CUDA's numbering to NVML's (PCI) order
    before CUDA starts; when CUDA already started in another order, NVML indices are
    matched to ordinals by UUID. ``gpus="all"`` with GPUs NVML sees and torch cannot use
    is refused (else the run would silently measure the CPU)."""
    import torch

    cuda = cuda if cuda is not None else torch.cuda
    if config.gpus == 0:
        return []
    pci = _gpu_place.pin_pci_order(cuda)
    count = cuda.device_count() if cuda.is_available() else 0
    if config.gpus == "all" and count == 0:
        _gpu_place.refuse_cpu_fallback(
            _gpu_place.nvml_visible_count(nvml), cuda, torch.__version__, torch.version.cuda
        )
    listed = isinstance(config.gpus, list) and count > 0
    uuids = _hf.cuda_uuids(cuda, count) if listed else []
    nvml_ids: list[str] = []
    if listed and not pci:
        nvml_ids = _gpu_place.nvml_uuids(nvml)
    return _hf.assigned_ordinals(config.gpus, count, _hf.cuda_visible(), uuids, nvml_ids)


def _dtype_kwarg() -> str:
    """``from_pretrained``'s precision keyword: ``dtype`` from transformers 4.56, before
    that ``torch_dtype`` (an unknown ``dtype`` would be ignored and load fp32)."""
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


class PytorchBackend(Backend):
    """transformers ``AutoModelForCausalLM.generate`` on CPU, one GPU or several (device_map).

    ``step_timer`` makes the ``StepTimer`` of each batch; by default CUDA events on the
    device holding the input embeddings, or the host clock on the CPU.
    """

    name = "pytorch"
    phase_marker: Callable[[str, float], None] | None = None

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        step_timer: Callable[[], StepTimer] | None = None,
        cuda: Any = None,
        nvml: Any = None,
    ) -> None:
        """``cuda`` (``torch.cuda``) and ``nvml`` (pynvml) are replaceable for tests."""
        super().__init__(config)
        self._make_timer = step_timer
        self._cuda = cuda
        self._nvml = nvml
        self._placement: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._ordinals: list[int] = []
        self._input_device: Any = "cpu"
        self._eos_ids: set[int] = set()
        self._threads_before: int | None = None
        self._params: dict[str, Any] = {}
        self._bos_id: int | None = None

    @classmethod
    def load_key(cls, config: ExperimentConfig) -> str | None:
        """Model, precision, GPUs (and the visible devices), and the pytorch.* load settings;
        batch size, decoding and generation lengths are per point (``reconfigure``)."""
        opts = config.pytorch
        return key_of(
            {
                "backend": cls.name,
                "model": config.model,
                "precision": config.precision,
                "gpus": config.gpus,
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "pytorch": opts.model_dump(mode="json", exclude={"use_cache"}),
            }
        )

    def reconfigure(self, config: ExperimentConfig) -> None:
        """Another point on the loaded model: new generation settings, same weights."""
        self.config = config
        if self._model is not None:
            self._model.generation_config = self._generation_config()

    def _generation_config(self) -> Any:
        from transformers import GenerationConfig

        return GenerationConfig(
            **_hf.generation_settings(self.config),
            pad_token_id=self._tokenizer.pad_token_id,
            bos_token_id=self._bos_id,
            eos_token_id=sorted(self._eos_ids) or None,
        )

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        """torch + transformers installed, the model present locally, GPUs present if asked for."""
        _require_stack()
        _hf.resolve_model(config.model)
        if config.gpus != 0:
            check_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
        _ordinals(config)

    def load(self) -> None:
        _require_stack()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = _hf.resolve_model(self.config.model)
        cuda = self._cuda if self._cuda is not None else torch.cuda
        ordinals = _ordinals(self.config, cuda, self._nvml)
        self._ordinals, self._placement = _gpu_place.placement(self.config, path, ordinals, cuda)
        opts = self.config.pytorch
        if opts.num_threads:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(opts.num_threads)
        kwargs: dict[str, Any] = {
            _dtype_kwarg(): getattr(torch, DTYPES[self.config.precision]),
            "local_files_only": True,
        }
        if opts.attn_implementation:
            kwargs["attn_implementation"] = opts.attn_implementation
        if len(self._ordinals) > 1 or (self._ordinals and opts.device_map):
            kwargs["device_map"] = opts.device_map or "auto"
            kwargs["max_memory"] = _gpu_place.max_memory(cuda, self._ordinals)
        elif self._ordinals and importlib.util.find_spec("accelerate") is not None:
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
        if self._ordinals and "device_map" not in kwargs:
            model = model.to(f"cuda:{self._ordinals[0]}")
        model.eval()
        self._params = _hf.parameter_counts(model)
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
        self._bos_id = model.generation_config.bos_token_id
        self._tokenizer = tokenizer
        model.generation_config = self._generation_config()
        self._input_device = model.get_input_embeddings().weight.device
        self._model = model

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
            timer = self._timer()
            timer.begin()
            start = timer.now()
            if self.phase_marker is not None:
                self.phase_marker("batch_start", start)
            enc = tokenizer(
                batch,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.config.max_input_tokens,
            ).to(self._input_device)
            clock = StepClock(timer, self.phase_marker)
            with torch.inference_mode():
                out = model.generate(**enc, stopping_criteria=[clock, StopAtDeadline()])
            end = timer.finish()
            new = out[:, enc["input_ids"].shape[1] :].tolist()
            steps = len(new[0]) if new else 0
            times = _hf.step_times(timer.times(), steps, end)
            clock.flush(times)
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
            if deadline_passed():
                break
        return result

    def _timer(self) -> StepTimer:
        if self._make_timer is not None:
            return self._make_timer()
        return step_timer_for(self._input_device)

    def warmup(self, prompts: list[str]) -> None:
        """The first batch; with ``torch_compile``, one batch of every distinct shape."""
        if not self.config.pytorch.torch_compile:
            super().warmup(prompts)
            return
        _, tokenizer = self._loaded()
        ids = tokenizer(prompts, truncation=True, max_length=self.config.max_input_tokens)
        lengths = [len(row) for row in ids["input_ids"]]
        for rows in _hf.shape_batches(lengths, self.config.batch_size):
            self.generate([prompts[i] for i in rows])

    def compile_count(self) -> int | None:
        """Graphs dynamo has compiled in this process (``torch_compile`` only)."""
        if not self.config.pytorch.torch_compile:
            return None
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])

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
        """NVML indices of the GPUs holding the model, matched by UUID; [] on CPU."""
        if not self._ordinals:
            return []
        import torch

        used = self._used_ordinals()
        known = _hf.cuda_uuids(torch.cuda, max(used) + 1)
        uuids = [known[o] if o < len(known) else "" for o in used]
        return nvml_indices_for(used, uuids, os.environ.get("CUDA_VISIBLE_DEVICES"))

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
        if self._placement is not None:
            env["gpu_placement"] = self._placement
        if self._model is not None:
            env["attn_implementation"] = getattr(self._model.config, "_attn_implementation", None)
        env.update(self._params)
        return env

    def unload(self) -> None:
        """Drop the model, free device memory, give torch back its previous thread count."""
        if self._model is None and self._threads_before is None:
            return
        import torch

        self._model = None
        self._tokenizer = None
        if self.config.pytorch.torch_compile:
            torch._dynamo.reset()  # the compiled graphs hold the old model's weights
        gc.collect()
        if self._ordinals:
            torch.cuda.empty_cache()
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
