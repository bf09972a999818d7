"""Plots from results DataFrames: what is drawn, and clear errors when it cannot be."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from llem_nb import plots
from llem_nb.errors import LlemError
from llem_nb.plots.energy import config_means
from llem_nb.results.frame import load_results
from llem_nb.results.reference import REFERENCE_LABEL, load_reference
from tests.support.nb_data import measured_results


@pytest.fixture(scope="module")
def df(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return load_results(measured_results(tmp_path_factory.mktemp("plots")))


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def _labels(ax) -> list[str]:
    return ax.get_legend_handles_labels()[1]


def test_energy_per_token_one_line_per_model_backend_gross_and_net(df: pd.DataFrame) -> None:
    fig = plots.energy_per_token(df)
    ax = fig.axes[0]
    assert _labels(ax) == ["fake-model / fake", "fake-model / fake (net)"]
    gross, net = ax.containers
    expected = df.groupby("batch_size")["energy_per_output_token_j"].mean().sort_index()
    np.testing.assert_allclose(np.asarray(gross.lines[0].get_ydata(), float), expected.to_numpy())
    net_expected = df.groupby("batch_size")["energy_per_output_token_net_j"].mean().sort_index()
    np.testing.assert_allclose(np.asarray(net.lines[0].get_ydata(), float), net_expected.to_numpy())
    assert net.lines[0].get_linestyle() == "--"
    assert gross.lines[0].get_color() == net.lines[0].get_color()
    assert ax.get_xscale() == "log"


def test_energy_per_token_says_when_net_was_not_measured(df: pd.DataFrame) -> None:
    no_net = df.assign(energy_net_j=np.nan, energy_per_output_token_net_j=np.nan)
    ax = plots.energy_per_token(no_net).axes[0]
    assert _labels(ax) == ["fake-model / fake"]
    assert any("net energy: not measured" in t.get_text() for t in ax.texts)


def test_energy_per_token_on_unmeasured_rows_is_a_clear_error(df: pd.DataFrame) -> None:
    with pytest.raises(LlemError, match="no successful rows"):
        plots.energy_per_token(df.assign(energy_per_output_token_j=np.nan))
    with pytest.raises(LlemError, match="no column"):
        plots.energy_per_token(df.drop(columns=["batch_size"]))
    with pytest.raises(LlemError, match="expected a pandas DataFrame"):
        plots.energy_per_token([1, 2, 3])  # type: ignore[arg-type]


def test_pareto_front_keeps_points_nobody_beats() -> None:
    points = pd.DataFrame(
        {
            "throughput_output_tok_s": [10.0, 20.0, 30.0, 25.0, 5.0, np.nan],
            "energy_per_output_token_j": [1.0, 0.8, 0.9, 0.5, 0.4, 0.1],
        }
    )
    assert plots.pareto_front(points).tolist() == [False, False, True, True, True, False]


def test_throughput_vs_energy_outlines_the_front(df: pd.DataFrame) -> None:
    ax = plots.throughput_vs_energy(df).axes[0]
    means = config_means(df, ["throughput_output_tok_s", "energy_per_output_token_j"])
    on_front = int(plots.pareto_front(means).sum())
    assert f"Pareto front ({on_front} of {len(means)})" in _labels(ax)
    assert sorted(t.get_text() for t in ax.texts) == ["bs 1", "bs 2", "bs 4"]


def test_reference_overlay_is_labelled_as_a_different_method(df: pd.DataFrame) -> None:
    ref = load_reference(model="Qwen3-14B", gpu="H100")
    ax = plots.energy_per_token(df, reference={"model": "Qwen3-14B", "gpu": "H100"}).axes[0]
    label = next(lab for lab in _labels(ax) if lab.startswith(REFERENCE_LABEL))
    assert "different method" in label
    overlay = next(c for c in ax.collections if c.get_label() == label)
    assert len(overlay.get_offsets()) == len(ref)
    with pytest.raises(LlemError, match="energy per output token only"):
        plots.energy_per_token(df, y="window_s", reference=True)


def test_load_reference_unknown_filter_names_the_known_values() -> None:
    with pytest.raises(LlemError, match="no published reference row") as info:
        load_reference(gpu="TPUv9")
    assert "H100" in str(info.value)


def test_power_timeseries_shades_window_and_phases() -> None:
    t = np.linspace(0.0, 4.0, 81)
    ts = pd.DataFrame({"t_s": np.tile(t, 2), "power_w": 100.0 + 10 * np.tile(t, 2),
                       "gpu": np.repeat([0, 1], len(t))})  # fmt: skip
    ts.attrs["window"] = (1.0, 3.5)
    ts.attrs["phases"] = {"baseline": (0.0, 1.0), "prefill": (1.0, 1.5), "decode": (1.5, 3.5)}
    ax = plots.power_timeseries(ts).axes[0]
    labels = _labels(ax)
    assert labels[:3] == ["baseline", "prefill", "decode"]
    assert "measured window" in labels
    assert [line.get_label() for line in ax.lines if line.get_label().startswith("GPU")] == [
        "GPU 0",
        "GPU 1",
    ]


def test_power_timeseries_phase_column_and_start_times() -> None:
    ts = pd.DataFrame({"t_s": [0.0, 1.0, 2.0, 3.0], "power_w": [50.0, 60.0, 200.0, 210.0],
                       "phase": ["baseline", "baseline", "window", "window"]})  # fmt: skip
    assert _labels(plots.power_timeseries(ts).axes[0])[:2] == ["baseline", "window"]
    ax = plots.power_timeseries(ts.drop(columns="phase"), phases={"a": 0.0, "b": 2.0}).axes[0]
    assert _labels(ax)[0] == "a"


def test_power_timeseries_reads_the_recorded_format() -> None:
    """Rows as ``llem_nb.load_timeseries`` returns them: t_s from the window start,
    ``window_s`` and the prefill intervals ``phases_s`` in attrs."""
    t = np.arange(-0.5, 2.01, 0.1)
    phase = np.where((t >= 0) & (t <= 2.0), "decode", "")
    phase[(t >= 0.0) & (t < 0.3)] = "prefill"
    ts = pd.DataFrame({"t_s": t, "gpu": "gpu0", "power_w": 300.0, "phase": phase})
    ts.attrs.update({"window_s": 2.0, "phases_s": [[0.0, 0.3], [1.0, 1.2]]})
    ax = plots.power_timeseries(ts).axes[0]
    assert _labels(ax) == ["prefill", "decode", "measured window", "gpu0"]
    spans = sorted((round(p.get_x(), 3), round(p.get_x() + p.get_width(), 3))
                   for p in ax.patches)  # fmt: skip
    assert spans == [(0.0, 0.3), (0.3, 1.0), (1.0, 1.2), (1.2, 2.0)]


def test_power_timeseries_of_a_measured_result(df: pd.DataFrame) -> None:
    ax = plots.power_timeseries(df.iloc[0]).axes[0]
    labels = _labels(ax)
    assert {"prefill", "decode", "measured window", "gpu0"} <= set(labels)
    window = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"]
    assert window == pytest.approx([0.0, df.iloc[0]["window_s"]])


def test_power_timeseries_without_data_is_a_clear_error(df: pd.DataFrame) -> None:
    with pytest.raises(LlemError, match="no power samples"):
        plots.power_timeseries(pd.DataFrame({"t_s": [], "power_w": []}))
    with pytest.raises(LlemError, match="no column"):
        plots.power_timeseries(pd.DataFrame({"time": [0.0], "watts": [1.0]}))
    with pytest.raises(LlemError, match="timeseries"):
        plots.power_timeseries(df.iloc[0].drop("timeseries_path"))


def test_prefill_decode_stacks_the_measured_split(df: pd.DataFrame) -> None:
    ax = plots.prefill_decode(df).axes[0]
    decode, prefill = ax.patches[:3], ax.patches[3:6]
    per_token = (
        df.assign(
            p=df["prefill_energy_j"] / df["output_tokens"],
            d=df["decode_energy_j"] / df["output_tokens"],
        )
        .groupby("batch_size")[["p", "d"]]
        .mean()
    )
    np.testing.assert_allclose([r.get_height() for r in decode], per_token["d"].to_numpy())
    np.testing.assert_allclose([r.get_height() for r in prefill], per_token["p"].to_numpy())
    np.testing.assert_allclose([r.get_y() for r in prefill], per_token["d"].to_numpy())


def test_prefill_decode_absent_or_nan_is_a_clear_error(df: pd.DataFrame) -> None:
    with pytest.raises(LlemError, match="prefill_energy_j"):
        plots.prefill_decode(df.drop(columns=["prefill_energy_j", "decode_energy_j"]))
    nan = df.assign(prefill_energy_j=np.nan, decode_energy_j=np.nan)
    with pytest.raises(LlemError, match="not measured in any"):
        plots.prefill_decode(nan)


def test_explore_facets_hue_and_categorical_x(df: pd.DataFrame) -> None:
    fig = plots.explore(df, "experiment_id", "window_s", hue="batch_size", facet="cycle")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    assert [ax.get_title() for ax in visible] == ["cycle = 0", "cycle = 1"]
    assert sorted(_labels(visible[0])) == ["1", "2", "4"]
    with pytest.raises(LlemError, match="no column 'nope'"):
        plots.explore(df, "nope", "window_s")
    with pytest.raises(LlemError, match="not numeric"):
        plots.explore(df, "batch_size", "model")
    with pytest.raises(LlemError, match="at most 1 panels"):
        plots.explore(df, "batch_size", "window_s", facet="cycle", max_facets=1)


# ---------------------------------------------------------------- one interval convention


def _bars(container) -> list[float]:
    """low, high of each vertical error bar in an ErrorbarContainer, in drawing order."""
    vertical = [c for c in container.lines[2] if all(s[0][0] == s[1][0] for s in c.get_segments())]
    segments = vertical[0].get_segments()
    return [float(v) for s in segments for v in (s[0][1], s[1][1])]


def _ci(df: pd.DataFrame, by: str, metric: str) -> list[float]:
    """``summarize``'s 95 % interval (the one convention), as low, high per group."""
    from llem_nb.results.stats import summarize

    stats = summarize(df, by=by, metrics=[metric])
    pairs = zip(stats[f"{metric}_ci95_low"], stats[f"{metric}_ci95_high"], strict=True)
    return [float(v) for pair in pairs for v in pair]


def test_error_bars_are_the_95_percent_interval_in_every_plot(df: pd.DataFrame) -> None:
    gross = "energy_per_output_token_j"
    expected = _ci(df, "batch_size", gross)
    ept = plots.energy_per_token(df).axes[0]
    assert _bars(ept.containers[0]) == pytest.approx(expected)
    ex = plots.explore(df, "batch_size", gross).axes[0]
    assert _bars(ex.containers[0]) == pytest.approx(expected)
    spread = df.assign(window_s=df["window_s"] * (1 + df["cycle"]))  # not the std: n = 2
    ex_std = plots.explore(spread, "batch_size", "window_s").axes[0]
    assert _bars(ex_std.containers[0]) == pytest.approx(_ci(spread, "batch_size", "window_s"))

    tve = plots.throughput_vs_energy(df).axes[0]
    per_config = _ci(df, "experiment_id", gross)
    assert sorted(_bars(tve.containers[0])) == pytest.approx(sorted(per_config))
    half = np.asarray(expected[1::2]) - df.groupby("batch_size")[gross].mean().to_numpy()
    assert not np.allclose(half, df.groupby("batch_size")[gross].std())  # an interval, not ±std

    pd_ax = plots.prefill_decode(df).axes[0]
    total = df.assign(t=(df["prefill_energy_j"] + df["decode_energy_j"]) / df["output_tokens"])
    assert _bars(pd_ax.containers[-1]) == pytest.approx(_ci(total, "batch_size", "t"))


def test_kwargs_reach_the_main_matplotlib_call(df: pd.DataFrame) -> None:
    ax = plots.energy_per_token(df, linewidth=3.5, marker="s").axes[0]
    assert {c.lines[0].get_linewidth() for c in ax.containers} == {3.5}
    assert {c.lines[0].get_marker() for c in ax.containers} == {"s"}
    ax = plots.throughput_vs_energy(df, s=99).axes[0]
    sizes = [c.get_sizes() for c in ax.collections if c.get_label() == "fake-model / fake"]
    assert sizes and all((s == 99).all() for s in sizes)
    ax = plots.explore(df, "batch_size", "window_s", color="#123456").axes[0]
    assert ax.containers[0].lines[0].get_color() == "#123456"
    ax = plots.prefill_decode(df, edgecolor="black", linewidth=2).axes[0]
    assert {p.get_linewidth() for p in ax.patches} == {2}
    t = np.linspace(0.0, 1.0, 5)
    ax = plots.power_timeseries(pd.DataFrame({"t_s": t, "power_w": t}), linestyle=":").axes[0]
    assert [line.get_linestyle() for line in ax.lines if line.get_label() == "power"] == [":"]


def test_explore_into_the_callers_axes_holds_one_panel(df: pd.DataFrame) -> None:
    _, ax = plt.subplots()
    assert plots.explore(df, "batch_size", "window_s", ax=ax).axes == [ax]
    with pytest.raises(LlemError, match="ax= holds one panel"):
        plots.explore(df, "batch_size", "window_s", facet="cycle", ax=ax)
