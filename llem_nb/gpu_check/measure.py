"""The GPU check's measurements: every (model, batch) point through the real Harness, and a
CUDA-event reference for its TTFT.

Each point uses the GPU default ``measurement.min_window_s`` (10 s: the prompt set is
repeated until the window lasts that long) and a 5 s idle baseline. The TTFT reference
times one batch's prefill and first token with CUDA events around ``generate(max_new_tokens
=1)``, outside any harness, to check that the harness's TTFT (CUDA-event step times since
issue #11) lands on the device's own clock.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llem_nb.backends.datasets import load_prompts
from llem_nb.backends.models import tiny_model
from llem_nb.backends.pytorch import PytorchBackend
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.energy.device import Nvml
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.gpu_check.models import BIG_LLAMA, FAKE_BIG_LLAMA, build_llama
from llem_nb.measure.harness import Harness
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore

BATCH_SIZES = (1, 8, 32)
BATCHES_PER_PASS = 4
COLUMNS = {
    "model": "model",
    "batch_size": "batch",
    "n_prompts": "prompts",
    "window_s": "window_s",
    "window_repeats": "repeats",
    "throughput_output_tok_s": "tok/s",
    "energy_per_output_token_j": "J/tok",
    "energy_per_output_token_net_j": "net J/tok",
    "counter_vs_power_ratio": "ctr/pwr",
    "idle_power_w": "idle_W",
    "avg_power_w": "avg_W",
    "prefill_share": "prefill%",
    "phase_method": "phases",
    "ttft_ms_p50": "ttft_ms",
    "ttft_ref_ms": "ref_ms",
    "quality_flags": "flags",
}


def experiment(model: Path, batch: int, n_prompts: int, **over: Any) -> ExperimentConfig:
    return validate_experiment(
        {
            "model": str(model),
            "backend": "pytorch",
            "batch_size": batch,
            "n_prompts": n_prompts,
            "max_input_tokens": 128,
            **over,
        }
    )


def ttft_reference_ms(config: ExperimentConfig, repeats: int = 5) -> float | None:
    """Median ms from a batch's start to its first token, timed by CUDA events around
    ``generate(max_new_tokens=1)`` (device clock; tokenisation included, as in the harness);
    None on the CPU."""
    import torch

    if config.gpus == 0 or not torch.cuda.is_available():
        return None
    backend = PytorchBackend(config)
    backend.load()
    try:
        model, tokenizer = backend._loaded()
        prompts = load_prompts(config.dataset, config.batch_size)
        times: list[float] = []
        for _ in range(repeats + 1):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            enc = tokenizer(
                prompts, return_tensors="pt", padding=True, truncation=True,
                max_length=config.max_input_tokens,
            ).to(model.device)  # fmt: skip
            with torch.inference_mode():
                model.generate(**enc, max_new_tokens=1, min_new_tokens=1)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        return float(statistics.median(times[1:]))
    finally:
        backend.unload()


def summary(frame: Any) -> Any:
    """The table the check prints: one row per experiment."""
    table = frame.copy()
    table["model"] = [Path(str(m)).name for m in table["model"]]
    table["prefill_share"] = 100 * table["prefill_energy_j"] / table["energy_gross_j"]
    table["quality_flags"] = [", ".join(f) if len(f) else "-" for f in table["quality_flags"]]
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    return table[list(COLUMNS)].rename(columns=COLUMNS)


def run_check(
    out: Path,
    *,
    fake: bool = False,
    models_dir: Path | None = None,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    min_window_s: float | None = None,
    baseline_s: float = 5.0,
    max_output_tokens: int = 64,
    big_shape: dict[str, Any] | None = None,
    nvml: Nvml | None = None,
    emit: Callable[[str], None] = print,
) -> tuple[Path, Any]:
    """Build the models, measure every (model, batch) point, write and return the results."""
    from llem_nb.results.frame import load_results  # noqa: PLC0415 - keeps measure light (numpy, pandas)

    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="llem-gpu-check-", dir=models_dir))
    base: dict[str, Any] = {"precision": "fp32", "gpus": 0} if fake else {"precision": "bf16"}
    base |= {"baseline": {"seconds": baseline_s}, "max_output_tokens": max_output_tokens}
    if min_window_s is not None:
        base |= {"measurement": {"min_window_s": min_window_s}}
    if not fake:
        base |= {"gpus": 1, "energy": {"source": "nvml"}}
    references: dict[str, float | None] = {}
    try:
        tiny = tiny_model(scratch / "tiny-llama")
        emit("building the ~1B random-init Llama …")
        shape = big_shape or (FAKE_BIG_LLAMA if fake else BIG_LLAMA)
        big = build_llama(scratch / "llama-1b", tiny, shape, "cpu" if fake else "cuda")
        store = ResultStore(results)
        for model in (tiny, big):
            for batch in batch_sizes:
                config = experiment(model, batch, batch * BATCHES_PER_PASS, **base)
                emit(f"measuring {model.name} batch {batch} …")
                meter = NvmlMeter([0], poll_interval_s=0.01, nvml=nvml) if fake else None
                try:
                    result = Harness(meter=meter).run(config, study="gpu-check")
                    references[result.experiment_id] = ttft_reference_ms(config)
                except Exception as exc:
                    emit(f"  failed: {type(exc).__name__}: {exc}")
                    result = ExperimentResult.failed(config, exc, study="gpu-check")
                finally:
                    if meter is not None:
                        meter.close()
                store.write(result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    frame = load_results(results)
    frame["ttft_ref_ms"] = [references.get(str(i)) for i in frame["experiment_id"]]
    table = summary(frame)
    table.to_csv(out / "summary.csv", index=False)
    return results, frame
