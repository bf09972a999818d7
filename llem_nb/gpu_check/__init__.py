"""``llem-nb gpu-check`` / ``python -m llem_nb.gpu_check``: the real NVML path, end to end.

On a machine with an NVIDIA GPU: a tiny Llama and a ~1B-parameter random-init Llama
(built from a ``LlamaConfig``, saved to a temp dir), PyTorch backend, bf16, one GPU,
batch 1/8/32, each window sized from a quick calibration to last ~6 s, a 5 s idle
baseline. Prints gross and net J/output-token, tokens/s, counter-vs-power ratio, idle
power, the prefill share and the flags, and writes the results dir (result JSONs,
Parquet timeseries, ``summary.csv``). Needs only torch, transformers, nvidia-ml-py,
pandas, pyyaml, pyarrow and pydantic (no accelerate, no platformdirs, no network).

``--fake`` runs the same code on the CPU against a fake NVML GPU (CI, no GPU).
Exit codes: 0 all measured, 1 an experiment failed, 2 no usable GPU here.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import ExperimentConfig, validate_experiment

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
BATCH_SIZES = (1, 8, 32)
DATASET_SIZE = 246
COLUMNS = {
    "model": "model",
    "batch_size": "batch",
    "n_prompts": "prompts",
    "window_s": "window_s",
    "throughput_output_tok_s": "tok/s",
    "energy_per_output_token_j": "J/tok",
    "energy_per_output_token_net_j": "net J/tok",
    "counter_vs_power_ratio": "ctr/pwr",
    "idle_power_w": "idle_W",
    "avg_power_w": "avg_W",
    "prefill_share": "prefill%",
    "phase_method": "phases",
    "quality_flags": "flags",
}


class NoGpu(Exception):
    """No NVIDIA GPU usable here (message says why)."""


def require_gpu() -> None:
    """Raise ``NoGpu`` unless NVML and CUDA both see a GPU."""
    from llem_nb.energy.factory import nvml_available

    ok, why = nvml_available()
    if not ok:
        raise NoGpu(why)
    try:
        import torch
    except ImportError as exc:
        raise NoGpu("torch is not installed") from exc
    if not torch.cuda.is_available():
        raise NoGpu(f"NVML sees a GPU ({why}) but torch.cuda is not available")


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


def calibrate(
    model: Path, batches: Sequence[int], target_s: float, base: dict[str, Any]
) -> dict[int, int]:
    """Prompts per batch size so that each window lasts about ``target_s``."""
    from llem_nb.backends.datasets import load_prompts
    from llem_nb.backends.pytorch import PytorchBackend

    config = experiment(model, max(batches), max(batches), **base)
    backend = PytorchBackend(config)
    backend.load()
    prompts = load_prompts(config.dataset, max(batches))
    out: dict[int, int] = {}
    try:
        for batch in batches:
            backend.generate(prompts[:batch])
            backend.synchronize()
            t = time.perf_counter()
            backend.generate(prompts[:batch])
            backend.synchronize()
            per_batch = time.perf_counter() - t
            n_batches = max(1, math.ceil(target_s / max(per_batch, 1e-3)))
            out[batch] = batch * min(n_batches, DATASET_SIZE // batch)
    finally:
        backend.unload()
    return out


def summary(frame: Any) -> Any:
    """The table the check prints: one row per experiment."""
    table = frame.copy()
    table["model"] = [Path(str(m)).name for m in table["model"]]
    table["prefill_share"] = 100 * table["prefill_energy_j"] / table["energy_gross_j"]
    table["quality_flags"] = [", ".join(f) if f else "-" for f in table["quality_flags"]]
    return table[list(COLUMNS)].rename(columns=COLUMNS)


def run_check(
    out: Path,
    *,
    fake: bool = False,
    models_dir: Path | None = None,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    target_window_s: float = 6.5,
    baseline_s: float = 5.0,
    max_output_tokens: int = 64,
    big_shape: dict[str, Any] | None = None,
    nvml: Any = None,
    emit: Callable[[str], None] = print,
) -> tuple[Path, Any]:
    """Build the models, measure every (model, batch) point, write and return the results."""
    from llem_nb.backends.models import tiny_model
    from llem_nb.energy.nvml import NvmlMeter
    from llem_nb.measure.harness import Harness
    from llem_nb.results.frame import load_results
    from llem_nb.results.schema import ExperimentResult
    from llem_nb.results.store import ResultStore

    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="llem-gpu-check-", dir=models_dir))
    base: dict[str, Any] = {"precision": "fp32", "gpus": 0} if fake else {"precision": "bf16"}
    base |= {"baseline": {"seconds": baseline_s}, "max_output_tokens": max_output_tokens}
    if not fake:
        base |= {"gpus": 1, "energy": {"source": "nvml"}}
    try:
        tiny = tiny_model(scratch / "tiny-llama")
        emit("building the ~1B random-init Llama …")
        shape = big_shape or (FAKE_BIG_LLAMA if fake else BIG_LLAMA)
        big = build_llama(scratch / "llama-1b", tiny, shape, "cpu" if fake else "cuda")
        store = ResultStore(results)
        for model in (tiny, big):
            sizes = calibrate(model, batch_sizes, target_window_s, base)
            for batch, n_prompts in sizes.items():
                config = experiment(model, batch, n_prompts, **base)
                emit(f"measuring {model.name} batch {batch} ({n_prompts} prompts) …")
                meter = NvmlMeter([0], poll_interval_s=0.01, nvml=nvml) if fake else None
                try:
                    result = Harness(meter=meter).run(config, study="gpu-check")
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
    table = summary(frame)
    table.to_csv(out / "summary.csv", index=False)
    return results, frame


def _environment_line(frame: Any) -> str:
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return "no experiment succeeded"
    row = ok.iloc[0]
    versions = f"driver {row['driver_version']}, llem_nb {row['llem_nb_version']}"
    return f"GPU: {row['gpu_name']} ({versions})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llem-nb gpu-check", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="gpu-check", help="results directory")
    parser.add_argument("--models-dir", default=None, help="where to build the models (temp)")
    parser.add_argument("--fake", action="store_true", help="CPU + fake NVML GPU (no GPU needed)")


def run(args: argparse.Namespace) -> int:
    """The command: exit 2 without a GPU (unless ``--fake``), else measure and print."""
    from llem_nb.testing.nvml import FakeGpu, FakeNvml
    from llem_nb.testing.traces import ramp

    nvml = None
    if args.fake:
        nvml = FakeNvml([FakeGpu(power_w=ramp(80.0, 350.0, 30.0))])
    else:
        try:
            require_gpu()
        except NoGpu as exc:
            print(f"gpu-check needs an NVIDIA GPU: {exc}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    kwargs: dict[str, Any] = {"fake": args.fake, "nvml": nvml}
    if args.fake:
        kwargs |= {"batch_sizes": (1, 2), "target_window_s": 0.3, "baseline_s": 0.2}
        kwargs |= {"max_output_tokens": 16}
    models_dir = Path(args.models_dir) if args.models_dir else None
    results, frame = run_check(Path(args.out), models_dir=models_dir, **kwargs)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print()
        print(_environment_line(frame))
        print(summary(frame).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nresults: {results}  ({time.perf_counter() - start:.0f} s)")
    return 0 if (frame["status"] == "ok").all() else 1


if __name__ == "__main__":
    sys.exit(main())
