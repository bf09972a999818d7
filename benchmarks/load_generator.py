"""Our load generator next to vLLM's own ``vllm bench serve`` client, on the stub server.

Both clients drive the same OpenAI-compatible stub (``llem_nb.testing.stub_server``, its
own process, 8 tokens per request streamed as fast as it can) at the same offered rates.
Printed per rate and client: achieved rate (requests ÷ first-to-last send), send-lag p99
(send − due; vLLM's client does not save its schedule, so n/a there) and the client's
CPU seconds over the run (ours: the load loop; vLLM's: its ``main``, dataset sampling
included, imports excluded). Goals: send-lag p99 ≤ 2 ms up to 500 req/s; client CPU no
more than vLLM's at the same rate. Each goal prints "met" or "missed".

    python benchmarks/load_generator.py            # 10 → 1,000 req/s
    python benchmarks/load_generator.py --smoke    # 10 and 100 req/s, few requests
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llem_nb.backends.serving.arrivals import arrival_times_s
from llem_nb.backends.serving.client import LoadSpec, run_load
from llem_nb.backends.serving.server import ManagedServer
from llem_nb.results.steady import percentiles

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / ".cache" / "vllm-venv" / "bin" / "python"
LAG_GOAL_S, LAG_GOAL_UP_TO_RPS = 0.002, 500.0
OUTPUT_TOKENS = 8

VLLM_CLIENT = """
import json, sys, time
from vllm.benchmarks.serve import add_cli_args, main
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
args = parser.parse_args(sys.argv[1:])
cpu = time.process_time()
result = main(args)
print("LLEM_CPU", time.process_time() - cpu, result["completed"], result["duration"])
"""


def ours(url: str, rate: float, n: int) -> dict[str, float]:
    spec = LoadSpec(
        base_url=url,
        model="stub",
        prompts=["a short prompt of a few words"],
        arrivals_s=arrival_times_s(n, rate, "poisson", seed=1),
        max_tokens=OUTPUT_TOKENS,
    )
    load = run_load(spec)
    sends = sorted(r.sent_s for r in load.requests)
    return {
        "achieved": (n - 1) / (sends[-1] - sends[0]),
        "lag_p99_ms": percentiles(load.lags_s)[99] * 1e3,
        "cpu_s": load.client_cpu_s,
        "failed": sum(not r.ok for r in load.requests),
    }


def vllm_client(url: str, rate: float, n: int, tokenizer: Path) -> dict[str, float] | None:
    if not VLLM_PYTHON.is_file():
        return None
    argv = [
        "--backend", "vllm", "--base-url", url, "--endpoint", "/v1/completions",
        "--model", "stub", "--tokenizer", str(tokenizer), "--dataset-name", "random",
        "--random-input-len", "8", "--random-output-len", str(OUTPUT_TOKENS),
        "--num-prompts", str(n), "--request-rate", str(rate), "--ignore-eos",
        "--disable-tqdm", "--num-warmups", "0", "--seed", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [str(VLLM_PYTHON), "-c", VLLM_CLIENT, *argv],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    line = [x for x in done.stdout.splitlines() if x.startswith("LLEM_CPU")]
    if done.returncode != 0 or not line:
        print(f"  vLLM client failed ({done.returncode}): {done.stderr[-600:]}")
        return None
    _, cpu_s, completed, duration = line[-1].split()
    return {"achieved": float(completed) / float(duration), "cpu_s": float(cpu_s)}


def tiny_tokenizer(directory: Path) -> Path:
    """The tiny test model's directory (its tokenizer is all vLLM's client needs)."""
    from llem_nb.backends.models import tiny_model  # noqa: PLC0415 - keeps the client run light

    return Path(tiny_model(directory / "tiny", head_dim=32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="10 and 100 req/s, few requests")
    args = parser.parse_args()
    rates = [10.0, 100.0] if args.smoke else [10.0, 50.0, 100.0, 500.0, 1000.0]
    seconds = 1.0 if args.smoke else 5.0
    stub = [sys.executable, "-m", "llem_nb.testing.stub_server", "--port"]
    missed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, ManagedServer(lambda p: [*stub, str(p)]) as srv:
        tokenizer = tiny_tokenizer(Path(tmp)) if VLLM_PYTHON.is_file() else Path(tmp)
        print(f"stub server at {srv.base_url}; {OUTPUT_TOKENS} tokens per request")
        print(f"{'rate':>7} {'client':>7} {'achieved':>9} {'lag p99':>9} {'CPU s':>7}  goals")
        for rate in rates:
            n = max(20, int(rate * seconds))
            mine = ours(srv.base_url, rate, n)
            theirs = vllm_client(srv.base_url, rate, n, tokenizer)
            goals = []
            if rate <= LAG_GOAL_UP_TO_RPS:
                ok = mine["lag_p99_ms"] <= LAG_GOAL_S * 1e3
                goals.append(f"lag ≤ 2 ms {'met' if ok else 'missed'}")
                if not ok:
                    missed.append(f"send-lag p99 at {rate:g} req/s")
            if theirs is not None:
                ok = mine["cpu_s"] <= theirs["cpu_s"]
                goals.append(f"CPU ≤ vLLM's {'met' if ok else 'missed'}")
                if not ok:
                    missed.append(f"client CPU at {rate:g} req/s")
            failed = f" ({mine['failed']:.0f} failed)" if mine["failed"] else ""
            print(
                f"{rate:7g} {'llem_nb':>7} {mine['achieved']:9.1f} "
                f"{mine['lag_p99_ms']:7.2f}ms {mine['cpu_s']:7.3f}  {', '.join(goals)}{failed}"
            )
            if theirs is None:
                print(f"{rate:7g} {'vLLM':>7}  skipped: no vLLM venv at {VLLM_PYTHON}")
            else:
                print(
                    f"{rate:7g} {'vLLM':>7} {theirs['achieved']:9.1f} {'n/a':>9} "
                    f"{theirs['cpu_s']:7.3f}"
                )
            time.sleep(0.2)
    print("every goal met" if not missed else "missed: " + "; ".join(missed))


if __name__ == "__main__":
    main()
