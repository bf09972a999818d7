"""``llem-nb``: a thin command line over the notebook API (demo, run, env)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

DEMO_BATCH_SIZES = (1, 2, 4, 8)


def quickstart_study(model: str, *, n_prompts: int = 8, max_output_tokens: int = 32) -> Any:
    """The study the quickstart notebook and ``llem-nb demo`` run: a batch-size sweep."""
    from llem_nb.study.study import Study

    return Study(
        "quickstart",
        model=model,
        precision="fp32",
        n_prompts=n_prompts,
        max_input_tokens=128,
        max_output_tokens=max_output_tokens,
        gpus="all",
    ).sweep(batch_size=list(DEMO_BATCH_SIZES))


SUMMARY_COLUMNS = [
    "batch_size",
    "status",
    "output_tokens",
    "window_s",
    "throughput_output_tok_s",
    "ttft_ms_p50",
    "energy_source",
    "energy_per_output_token_j",
    "energy_per_output_token_net_j",
]


def summary_table(df: Any) -> str:
    cols = [c for c in SUMMARY_COLUMNS if c in df.columns]
    order = [c for c in ("model", "backend", "batch_size", "cycle") if c in df.columns]
    table = df.sort_values(order, kind="stable") if order else df
    return str(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def cmd_demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from llem_nb import plots
    from llem_nb.backends.models import demo_model, tiny_model

    out = Path(args.out)
    if args.model == "tiny":
        model = str(tiny_model(out / "tiny-model"))
    elif args.model == "smollm2":
        print("preparing SmolLM2-135M-Instruct (converted once, then cached) …", flush=True)
        model = str(demo_model())
    else:
        model = args.model
    study = quickstart_study(model, n_prompts=args.n_prompts)
    print(f"running {len(study.points)} experiments on {model}", flush=True)
    result = study.run(results_dir=out)
    df = result.df
    print()
    print(summary_table(df))
    if (df["status"] == "ok").any() and df["energy_per_output_token_j"].notna().any():
        fig = plots.energy_per_token(df)
        png = result.dir / "energy_per_token.png"
        fig.savefig(png, dpi=120)
        print(f"\nplot: {png}")
    else:
        print("\nno energy measured here, so no energy plot (see `llem-nb env`)")
    print(f"results: {result.dir}")
    return 0 if not result.failed else 1


def cmd_run(args: argparse.Namespace) -> int:
    from llem_nb.study.study import Study

    study = Study.from_yaml(args.study)
    result = study.run(runner=args.runner, results_dir=args.results_dir)
    print(summary_table(result.df))
    print(f"results: {result.dir}")
    return 0 if not result.failed else 1


def environment_report() -> list[tuple[str, str, str]]:
    """(what, status, why) rows describing what is usable on this machine."""
    from llem_nb.energy.factory import nvml_available
    from llem_nb.energy.rapl import RaplMeter

    rows: list[tuple[str, str, str]] = []
    ok, why = nvml_available()
    rows.append(("energy: nvml", "yes" if ok else "no", why))
    rapl = RaplMeter.available()
    rows.append(
        (
            "energy: rapl",
            "yes" if rapl else "no",
            "" if rapl else "/sys/class/powercap not readable",
        )
    )
    rows.append(("energy: estimate", "yes", "CPU-time model, flagged as an estimate"))
    for name, module in (("backend: pytorch", "transformers"), ("backend: vllm", "vllm")):
        found = importlib.util.find_spec(module) is not None
        rows.append((name, "yes" if found else "no", "" if found else f"pip install {module}"))
    from llem_nb.runners.docker.cli import docker_env_rows

    rows.extend(docker_env_rows())
    return rows


def cmd_env(args: argparse.Namespace) -> int:
    for what, status, why in environment_report():
        print(f"{what:<22} {status:<4} {why}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llem-nb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="batch-size sweep on the demo model; table + plot")
    demo.add_argument("--model", default="smollm2", help="smollm2 (default), tiny, or a path")
    demo.add_argument("--out", default="demo-results", help="results directory")
    demo.add_argument("--n-prompts", type=int, default=8)
    demo.set_defaults(func=cmd_demo)
    run = sub.add_parser("run", help="run a study YAML file")
    run.add_argument("study", help="path to study.yaml")
    run.add_argument("--runner", default=None, help="local, subprocess, docker, …")
    run.add_argument("--results-dir", default="results")
    run.set_defaults(func=cmd_run)
    env = sub.add_parser("env", help="what energy sources, backends and runners work here")
    env.set_defaults(func=cmd_env)
    from llem_nb import gpu_check

    check = sub.add_parser("gpu-check", help="short real study on an NVIDIA GPU; prints a table")
    gpu_check.add_arguments(check)
    check.set_defaults(func=gpu_check.run)
    from llem_nb.runners.docker.cli import add_images_parser

    add_images_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from llem_nb.errors import LlemError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LlemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
