"""Harness overhead: the measured window vs a bare ``generate`` loop doing the same work.

Same tiny model, same prompts, same static batches, same decoding, same process.
The two are timed alternately (ABAB…) so drift hits both; the ratio of medians is
printed. Goal: ≤ 1.01 (per-step latency capture and token accounting included).

    .venv/bin/python benchmarks/overhead.py [--repeats 7] [--n-prompts 32] [--batch-size 8]

``--smoke``: one repeat of two prompts and two tokens (seconds), for ``make test``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from llem_nb.backends.datasets import load_prompts
from llem_nb.backends.models import tiny_model
from llem_nb.config.experiment import validate_experiment
from llem_nb.measure.harness import Harness

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bare_loop(
    model_dir: Path, prompts: list[str], batch_size: int, max_in: int, max_out: int
) -> float:
    """What a user would write by hand: tokenizer + generate per batch, timed around it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left", local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        enc = tok(
            prompts[i : i + batch_size],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_in,
        )
        with torch.inference_mode():
            model.generate(
                **enc, max_new_tokens=max_out, do_sample=False, pad_token_id=tok.pad_token_id
            )
    return time.perf_counter() - t0


def harness_window(config: object) -> float:
    result = Harness().run(config)  # type: ignore[arg-type]
    assert result.window_s is not None
    return result.window_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n-prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-output-tokens", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for make test")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.n_prompts, args.batch_size, args.max_output_tokens = 1, 2, 2, 2

    import torch

    torch.set_num_threads(1)
    model_dir = tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    config = validate_experiment(
        {
            "model": str(model_dir),
            "precision": "fp32",
            "n_prompts": args.n_prompts,
            "batch_size": args.batch_size,
            "max_input_tokens": 128,
            "max_output_tokens": args.max_output_tokens,
            "warmup": {"runs": 1},
            "energy": {"source": "none"},
            "gpus": 0,
            "pytorch": {"num_threads": 1},
        }
    )
    prompts = load_prompts(config.dataset, config.n_prompts, seed=config.decoder.seed)
    bare_loop(model_dir, prompts, args.batch_size, 128, args.max_output_tokens)  # warm caches

    bare, harness = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(model_dir, prompts, args.batch_size, 128, args.max_output_tokens))
        harness.append(harness_window(config))
    b, h = statistics.median(bare), statistics.median(harness)
    print(
        f"tiny model, {args.n_prompts} prompts, batch {args.batch_size}, "
        f"{args.max_output_tokens} new tokens, {args.repeats} alternating repeats, 1 thread"
    )
    print(f"{'':<22}{'median s':>10}{'min s':>10}")
    print(f"{'bare generate loop':<22}{b:>10.4f}{min(bare):>10.4f}")
    print(f"{'harness window':<22}{h:>10.4f}{min(harness):>10.4f}")
    print(f"ratio harness/bare (median): {h / b:.3f}   (goal <= 1.01)")
    print(f"ratio harness/bare (min):    {min(harness) / min(bare):.3f}")


if __name__ == "__main__":
    main()
