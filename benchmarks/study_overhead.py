"""What a study spends outside its measured windows, before and after reuse.

For a 4-batch-size × 3-cycle sweep, the ratio of study wall time to the sum of measured
windows, run with ``reuse="never"`` (every experiment loads the model, warms it up and
measures an idle baseline afresh: the design before issue 15) and ``reuse="auto"``, side by
side in one run: the tiny model on the CPU in the kernel and in a subprocess, and the demo
model (SmolLM2-135M) in the kernel. Each run is preceded by one untimed experiment, so
imports and file caches are paid by neither. Goals: ≤ 1.15 for the demo model in the
kernel, ≤ 1.3 for the subprocess runner.

``--docker``: the tiny model in the Docker runner too (the CPU image, $DOCKER_HOST and
$LLEM_BENCH_IMAGE, default the private engine's ``ghcr.io/llem-nb/pytorch:<version>-cpu``):
``reuse="never"`` is one container per experiment, ``"auto"`` one container per loaded
model (goal ≤ 1.3). ``--only docker`` runs just the cases whose label contains it.

The CPU has no energy counter here and ``measurement.min_window_s`` is off on the CPU, so
windows would last a fraction of a second; each window is held to ``--min-window-s``
(default 10 s, the GPU default; the prompt set is repeated, every token counted) so the
ratio compares set-up with measurement time as a GPU study would. What reuse cannot remove
is paid once per study: a subprocess worker's Python start and torch import (~5 s on an
idle machine, 15-20 s on a loaded 2-core one), the first load and warm-up.

    .venv/bin/python benchmarks/study_overhead.py [--min-window-s 10] [--cycles 3] [--no-demo]
        [--docker] [--only LABEL]

``--smoke``: the tiny model in the kernel only (a subprocess worker's start would dominate),
batch sizes 1 and 2, one cycle, 0.05 s windows, for ``make test``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from llem_nb.backends.models import demo_model, tiny_model
from llem_nb.runners.docker.images import default_image
from llem_nb.runners.docker.runner import DockerRunner
from llem_nb.study.overhead import compare_reuse, overhead_table
from llem_nb.study.study import Study

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH_SIZES = [1, 2, 4, 8]
GOALS = {"demo model, kernel": 1.15, "tiny model, subprocess": 1.3, "tiny model, docker": 1.3}


def docker_runner() -> Any:
    """The Docker runner on $DOCKER_HOST with the CPU image (the private engine's by default)."""
    if not os.environ.get("DOCKER_HOST"):
        engine = Path(__file__).resolve().parents[1] / ".cache" / "docker" / "docker.sock"
        os.environ["DOCKER_HOST"] = f"unix://{engine}"
    image = os.environ.get("LLEM_BENCH_IMAGE") or default_image("pytorch", cuda=None)
    return DockerRunner(image, base_url=os.environ["DOCKER_HOST"], timeout_s=1800)


def sweep(model: str, name: str, args: argparse.Namespace) -> Any:
    return (
        Study(
            name,
            model=model,
            precision="fp32",
            gpus=0,
            n_prompts=args.n_prompts,
            max_input_tokens=128,
            max_output_tokens=args.max_output_tokens,
            measurement={"min_window_s": args.min_window_s},
            pytorch={"num_threads": args.threads},
        )
        .sweep(batch_size=args.batch_sizes)
        .cycles(args.cycles)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-window-s", type=float, default=10.0)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--n-prompts", type=int, default=8)
    parser.add_argument("--max-output-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo model")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=BATCH_SIZES)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny model, one cycle, short windows (make test)"
    )
    parser.add_argument("--docker", action="store_true", help="add the Docker runner (CPU image)")
    parser.add_argument("--only", default="", help="run the cases whose label contains this")
    args = parser.parse_args()
    if args.smoke:
        args.min_window_s, args.cycles, args.n_prompts = 0.05, 1, 2
        args.max_output_tokens, args.no_demo, args.batch_sizes = 2, True, [1, 2]

    scratch = Path(tempfile.mkdtemp(prefix="llem-study-overhead-"))
    tiny = str(tiny_model(scratch / "tiny"))
    cases: list[tuple[str, str, Any]] = [("tiny model, kernel", tiny, "local")]
    if not args.smoke:
        cases.append(("tiny model, subprocess", tiny, "subprocess"))
    if not args.no_demo:
        print("preparing the demo model (converted once, then cached) …", flush=True)
        cases.append(("demo model, kernel", str(demo_model()), "local"))
    if args.docker:
        cases.append(("tiny model, docker", tiny, docker_runner()))
    cases = [c for c in cases if args.only in c[0]]

    print(
        f"{len(args.batch_sizes)} batch sizes × {args.cycles} cycles, {args.n_prompts} prompts, "
        f"{args.max_output_tokens} new tokens, windows held to ≥ {args.min_window_s:g} s, "
        f"{args.threads} torch thread(s), CPU (no energy counter here)",
        flush=True,
    )
    summary: list[tuple[str, float, float]] = []
    for label, model, runner in cases:
        study = sweep(model, label.split(",")[0].replace(" ", "-"), args)
        runs = compare_reuse(study, runner=runner, results_dir=scratch / "results")
        print(f"\n{label}")
        print(overhead_table(runs))
        summary.append((label, runs["never"].ratio, runs["auto"].ratio))

    print(f"\n{'study wall / Σ windows':<26}{'never':>8}{'auto':>8}{'goal':>8}")
    for label, never, auto in summary:
        goal = GOALS.get(label)
        verdict = "" if goal is None else ("  met" if auto <= goal else "  missed")
        goal_text = f"≤{goal:g}" if goal is not None else "-"
        print(f"{label:<26}{never:>8.3f}{auto:>8.3f}{goal_text:>8}{verdict}")


if __name__ == "__main__":
    main()
