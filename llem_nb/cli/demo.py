"""``llem-nb demo``: the quickstart study on the demo model, a summary table and a plot."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llem_nb.backends.models import demo_model, tiny_model

DEMO_BATCH_SIZES = (1, 2, 4, 8)


def quickstart_study(model: str, *, n_prompts: int = 8, max_output_tokens: int = 32) -> Any:
    """The study the quickstart notebook and ``llem-nb demo`` run: a batch-size sweep."""
    from llem_nb.study.study import Study  # noqa: PLC0415 - keeps demo light (pydantic, yaml)

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
    "label",
    "backend",
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
    if (
        "label" in cols
        and "batch_size" in cols
        and df["label"].astype(str).str.fullmatch(r"batch_size=\S+").all()
    ):
        cols.remove("batch_size")
    order = [c for c in ("model", "backend", "batch_size", "cycle") if c in df.columns]
    table = df.sort_values(order, kind="stable") if order else df
    return str(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def cmd_demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from llem_nb import plots  # noqa: PLC0415 - keeps demo light (matplotlib)

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


def add(sub: Any) -> None:
    demo = sub.add_parser("demo", help="batch-size sweep on the demo model; table + plot")
    demo.add_argument("--model", default="smollm2", help="smollm2 (default), tiny, or a path")
    demo.add_argument("--out", default="demo-results", help="results directory")
    demo.add_argument("--n-prompts", type=int, default=8)
    demo.set_defaults(func=cmd_demo)
