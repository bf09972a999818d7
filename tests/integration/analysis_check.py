"""Run in an analysis venv (base install only): every analysis path on prepared results.

``python analysis_check.py DATA OUT``. DATA holds ``sweep/`` (a batch-size sweep with
labels), ``measured/`` (results with timeseries and a prefill/decode split) and
``peers/`` (LLenergyMeasure and optimum-benchmark files). Writes into OUT: the frame
(``frame.pkl``), the report, the CLI's report, the plots, an export, and ``summary.json``
with the versions and every answer, for the test to compare across venvs.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import llem_nb as ll  # noqa: E402


def main(data: Path, out: Path) -> None:
    absent = [m for m in ("torch", "transformers", "pynvml", "ipywidgets", "vllm", "scipy")
              if importlib.util.find_spec(m) is not None]  # fmt: skip
    assert absent == [], f"the analysis venv must not hold {absent}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = ll.load_results(
            [data / "sweep", data / "peers"],
            reference={"model": "Qwen3-14B", "gpu": "H100", "task": "lm-arena-chat"},
        )
        measured = ll.load_results(data / "measured")
    problems = [str(w.message) for w in caught if not issubclass(w.category, ll.LlemWarning)]
    sweep = df[df["origin"] == "llem_nb"]
    stats = ll.summarize(sweep)
    comparison = ll.compare(df, a="batch_size=1", b="batch_size=4")
    pick = ll.recommend(df[df["origin"] == "llem_nb"], where={"ttft_ms_p90": "<= 350"})
    figures = {
        "energy_per_token": ll.plots.energy_per_token(measured),
        "throughput_vs_energy": ll.plots.throughput_vs_energy(measured),
        "explore": ll.plots.explore(sweep, x="batch_size", y="energy_per_output_token_j"),
        "power_timeseries": ll.plots.power_timeseries(measured.iloc[0]),
        "prefill_decode": ll.plots.prefill_decode(measured),
    }
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=60)
    ll.report(data / "measured", out / "report.html")
    cli = Path(sys.executable).with_name("llem-nb")
    subprocess.run([str(cli), "report", str(data / "sweep"), "-o", str(out / "cli.html")], check=True)
    ll.export(df, out / "warehouse")
    with open(out / "frame.pkl", "wb") as fh:
        pickle.dump(df, fh)
    import numpy
    import pandas

    summary = {
        "python": sys.version.split()[0],
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "rows": len(df),
        "origins": sorted(set(df["origin"])),
        "dtypes": {c: str(t) for c, t in df.dtypes.items()},
        "summary_labels": stats["label"].tolist(),
        "summary_low": stats["energy_per_output_token_j_ci95_low"].round(12).tolist(),
        "comparison": comparison.sentence,
        "recommendation": pick.sentence,
        "best": pick.best,
        "warnings": problems,
        "figures": sorted(figures),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
