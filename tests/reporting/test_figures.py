"""Figure captions say what the drawn figure shows, and only that; log axes tick at 1-2-5;
the reference overlay holds only comparable published configurations."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from llem_nb import plots
from llem_nb.plots.published import comparable_reference
from llem_nb.reporting.figures import _energy_caption, _pareto_caption, drawn
from tests.reporting.test_sentences import frame


def test_one_cycle_gross_only_caption_promises_no_net_and_no_error_bars() -> None:
    df = frame({1: [0.5], 2: [0.3], 4: [0.4]})
    fig = plots.energy_per_token(df)
    assert drawn(fig) == {"dashed": False, "error_bars": False, "hollow": False}
    caption = _energy_caption(fig)
    assert "dashed" not in caption and "error bars: 95 %" not in caption
    assert "no error bars: a single cycle" in caption and "hollow" not in caption


def test_three_cycles_with_net_caption_names_dashed_net_and_error_bars() -> None:
    df = frame({1: [0.50, 0.51, 0.49], 2: [0.30, 0.31, 0.29]})
    df = df.assign(energy_per_output_token_net_j=df["energy_per_output_token_j"] / 2)
    fig = plots.energy_per_token(df)
    assert drawn(fig)["dashed"] and drawn(fig)["error_bars"]
    caption = _energy_caption(fig)
    assert "net (idle power subtracted) dashed" in caption
    assert "error bars: 95 % confidence interval over cycles" in caption
    assert "error bars" in _pareto_caption(plots.throughput_vs_energy(df))


def test_estimates_are_hollow_and_the_caption_says_so() -> None:
    df = frame({1: [0.5, 0.52], 2: [0.3, 0.31]}).assign(energy_source="estimate")
    fig = plots.energy_per_token(df)
    assert drawn(fig)["hollow"] and "hollow markers are estimates" in _energy_caption(fig)


def test_log_ticks_are_labelled_at_1_2_5_only() -> None:
    fig = plots.energy_per_token(frame({1: [0.5], 2: [0.03]}))
    axes = fig.axes[0]
    plots.base.log_axis(axes, "y", base=10)
    axes.set_ylim(0.01, 1.0)
    fig.canvas.draw()
    labels = [t.get_text() for t in axes.get_yticklabels() if t.get_text()]
    assert labels and all(t.lstrip("0.").rstrip("0")[:1] in "125" for t in labels), labels
    assert "0.09" not in labels and "0.08" not in labels


def test_the_reference_shows_one_comparable_model_and_says_which() -> None:
    cpu = pd.DataFrame({"model": ["/x/SmolLM2-135M-Instruct"], "gpu_name": [None]})
    rows, which = comparable_reference(cpu)
    assert rows["model_id"].nunique() == 1 and (rows["num_gpus"] == 1).all()
    assert "nearest ours in size" in which and "every published GPU" in which
    h100 = pd.DataFrame({"model": ["org/Some-7B"], "gpu_name": ["NVIDIA H100 80GB HBM3"]})
    rows, which = comparable_reference(h100)
    assert set(rows["gpu"]) == {"H100"} and "same GPU class (H100)" in which
    assert len(rows) < 20
