"""How fast load_results turns a directory of result files into a DataFrame.

Writes N realistic result files (full config dump, a swept point, 32 per-request
entries, one or two energy devices, an environment record) to a temp dir, then
times side by side: (a) ``load_results(dir, index=False)`` (parse every file),
(b) a naive loop of ``json.load`` + ``pandas.json_normalize`` per file + ``pd.concat``,
(c) reading and ``json.loads`` of the same files and nothing else (the floor).
Goals: a/b ≥ 5×, a/c ≤ 1.5×. Then, on ``--index-n`` files (default 100k): the first
``load_results(dir)`` (parses, writes the Parquet index) against the second (reads the
index, checks each file's size and mtime). Goal: ≥ 10×.

    .venv/bin/python benchmarks/load_results.py [--n 10000] [--index-n 100000]

``--smoke``: 40 and 60 files (seconds), for ``make test``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pandas as pd  # noqa: TID253 - a benchmark of the frame loader

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.results.frame import load_results
from llem_nb.results.index import INDEX_NAME
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore

MODELS = (
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "meta-llama/Llama-3.2-1B",
)


def _environment(rng: random.Random) -> dict[str, Any]:
    return {
        "llem_nb_version": "0.1.0",
        "python": "3.11.7",
        "python_executable": "/opt/venv/bin/python",
        "os": "Linux-6.8.0-49-generic-x86_64-with-glibc2.39",
        "cpu_model": "AMD EPYC 9454 48-Core Processor",
        "cpu_count": 96,
        "ram_gib": 755.5,
        "torch_version": "2.5.1",
        "transformers_version": "4.46.3",
        "vllm_version": None,
        "accelerate_version": "1.1.1",
        "nvidia_ml_py_version": "12.560.30",
        "in_container": rng.random() < 0.5,
        "cuda_visible_devices": "0,1",
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "driver_version": "550.127.05",
        "cuda_version": "12.4",
    }


def _result(i: int, rng: random.Random) -> ExperimentResult:
    batch = rng.choice([1, 4, 8, 16, 32])
    precision = rng.choice(["fp16", "bf16"])
    attn = rng.choice(["eager", "sdpa"])
    config = ExperimentConfig(
        model=MODELS[i % len(MODELS)],
        batch_size=batch,
        precision=precision,
        pytorch={"attn_implementation": attn},
        decoder={"temperature": 0.7, "do_sample": True, "seed": i},
    )
    ins = [rng.randint(40, 256) for _ in range(32)]
    outs = [rng.randint(8, 64) for _ in range(32)]
    window = rng.uniform(5, 60)
    n_gpus = rng.choice([1, 2])
    devices = [
        {
            "label": f"gpu{g}",
            "index": g,
            "uuid": f"GPU-{rng.getrandbits(64):016x}",
            "name": "NVIDIA H100 80GB HBM3",
            "energy_j": rng.uniform(2000, 20000),
            "method": "nvml_counter",
            "samples": int(window / 0.05),
            "power_integral_j": rng.uniform(2000, 20000),
            "idle_power_w": rng.uniform(60, 90),
            "energy_net_j": rng.uniform(1000, 15000),
        }
        for g in range(n_gpus)
    ]
    gross = sum(d["energy_j"] for d in devices)
    idle = sum(d["idle_power_w"] for d in devices)
    return ExperimentResult(
        study="bench",
        experiment_id=config.experiment_id,
        config_hash=config.config_hash,
        cycle=i // len(MODELS) % 5,
        config=config.model_dump(mode="json"),
        point={"batch_size": batch, "precision": precision, "pytorch.attn_implementation": attn},
        runner="docker",
        runner_source="auto-detect",
        image="ghcr.io/llem-nb/pytorch:0.1.0-cuda12",
        image_digest=f"sha256:{rng.getrandbits(256):064x}",
        finished_at="2025-01-01T00:01:00.000+00:00",
        load_s=rng.uniform(1, 10),
        warmup_s=rng.uniform(0.5, 3),
        window_s=window,
        batching="static",
        n_requests=32,
        input_tokens=sum(ins),
        output_tokens=sum(outs),
        requests={
            "input_tokens": ins,
            "output_tokens": outs,
            "e2e_s": [rng.uniform(0.1, window) for _ in range(32)],
            "ttft_s": [rng.uniform(0.01, 0.5) for _ in range(32)],
        },
        ttft_ms_p50=rng.uniform(10, 500),
        ttft_ms_p90=rng.uniform(10, 500),
        ttft_ms_p99=rng.uniform(10, 500),
        itl_ms_p50=rng.uniform(5, 50),
        itl_ms_p90=rng.uniform(5, 50),
        itl_ms_p99=rng.uniform(5, 50),
        latency_s_p50=rng.uniform(0.5, 5),
        latency_s_mean=rng.uniform(0.5, 5),
        energy_source="nvml",
        gpu_count=n_gpus,
        energy_devices=devices,
        energy_gross_j=gross,
        idle_power_w=idle,
        energy_net_j=gross - idle * window,
        warnings=["counter and power integral disagree by 6.1%"] if i % 7 == 0 else [],
        quality_flags=["counter_power_disagree"] if i % 7 == 0 else [],
        environment=_environment(rng),
    )


def write_files(directory: str, n: int) -> None:
    rng = random.Random(0)
    store = ResultStore(directory)
    for i in range(n):
        result = _result(i, rng)
        result.experiment_id = f"{result.experiment_id}-{i:05d}"
        with open(store.path_for(result.experiment_id, result.cycle), "w") as fh:
            fh.write(result.to_json())


def _paths(directory: str) -> list[str]:
    return glob.glob(os.path.join(glob.escape(directory), "**", "*.result.json"), recursive=True)


def raw(directory: str) -> int:
    count = 0
    loads = json.loads
    for path in _paths(directory):
        with open(path, "rb") as fh:
            loads(fh.read())
        count += 1
    return count


def naive(directory: str) -> int:
    frames = []
    for path in _paths(directory):
        with open(path) as fh:
            frames.append(pd.json_normalize(json.load(fh)))
    return len(pd.concat(frames, ignore_index=True))


def parse_all(directory: str) -> int:
    return len(load_results(directory, index=False))


def indexed(n: int, repeats: int = 2) -> tuple[float, float, float]:
    """(first load, second load, raw json.loads) of ``n`` files, best of ``repeats`` each:
    the first parses and writes the index (deleted before each try), the second reads it."""
    with tempfile.TemporaryDirectory(prefix="llem-bench-index-") as directory:
        write_files(directory, n)
        (raw_s,) = best_of([raw], directory, 1)
        index = os.path.join(directory, INDEX_NAME)
        firsts, seconds = [], []
        for _ in range(repeats):
            if os.path.exists(index):
                os.unlink(index)
            t = time.perf_counter()
            first = load_results(directory)
            firsts.append(time.perf_counter() - t)
            t = time.perf_counter()
            second = load_results(directory)
            seconds.append(time.perf_counter() - t)
            pd.testing.assert_frame_equal(first, second)
            assert len(second) == n
    return min(firsts), min(seconds), raw_s


def best_of(fns: list[Callable[[str], Any]], directory: str, repeats: int) -> list[float]:
    """Best wall time of each function, runs interleaved so drifting load hits all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn(directory)
            spent.append(time.perf_counter() - t)
    return [min(spent) for spent in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="result files to write")
    parser.add_argument(
        "--index-n", type=int, default=100_000, help="files for the index test (0: skip it)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for make test")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.index_n = 40, 60
    with tempfile.TemporaryDirectory(prefix="llem-bench-") as directory:
        t = time.perf_counter()
        write_files(directory, args.n)
        size = sum(os.path.getsize(p) for p in _paths(directory)) / args.n
        print(
            f"wrote {args.n} files ({size / 1024:.1f} KiB each) in {time.perf_counter() - t:.1f} s"
        )
        frame = load_results(directory, index=False)
        assert len(frame) == args.n, len(frame)
        fast, floor = best_of([parse_all, raw], directory, 3)
        (slow,) = best_of([naive], directory, 1)
        timings = {
            "(a) load_results (parse)": fast,
            "(b) naive json_normalize+concat": slow,
            "(c) raw read + json.loads": floor,
        }
    print(f"\n{'method':<34}{'seconds':>10}{'files/s':>12}")
    for name, seconds in timings.items():
        print(f"{name:<34}{seconds:>10.3f}{args.n / seconds:>12,.0f}")
    a, b, c = timings.values()
    verdict = {True: "", False: "  missed"}
    print(f"\nload_results vs naive:    {b / a:5.1f}x faster  (goal >= 5x){verdict[b / a >= 5]}")
    print(f"load_results / raw time:  {a / c:5.2f}x         (goal <= 1.5x){verdict[a / c <= 1.5]}")
    print(f"frame: {frame.shape[0]} rows x {frame.shape[1]} columns")
    if args.index_n:
        first, second, floor = indexed(args.index_n)
        print(
            f"\n{args.index_n} files, best of 2: first load {first:.2f} s (parse + write the "
            f"index), second {second:.2f} s (the index); raw json.loads {floor:.2f} s"
        )
        ratio = first / second
        print(
            f"indexed reload vs first:  {ratio:5.1f}x faster  (goal >= 10x){verdict[ratio >= 10]}"
        )


if __name__ == "__main__":
    main()
