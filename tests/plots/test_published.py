"""``ll.plots.reference``: ours next to the published ML.ENERGY v3 figures, matched by model
and by batch or concurrency, with the method difference written on the figure."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from llem_nb import plots
from llem_nb.errors import LlemError
from llem_nb.results.reference import REFERENCE_LABEL

H100 = "NVIDIA H100 80GB HBM3"


def published() -> pd.DataFrame:
    """The shipped CSV, read here directly (not through the code under test)."""
    with resources.files("llem_nb.data").joinpath("mlenergy_v3_chat.csv").open("rb") as fh:
        return pd.read_csv(fh)


def ours(model: str = "Qwen/Qwen3-8B", gpu: str = H100, source: str = "nvml") -> pd.DataFrame:
    """Three cycles at batch sizes 3, 8 and 16 (3 has no published neighbour)."""
    rows = []
    for batch_size, joules in ((3, 0.9), (8, 0.5), (16, 0.3)):
        for cycle, wiggle in enumerate((-0.01, 0.0, 0.01)):
            rows.append(
                {
                    "experiment_id": f"bs{batch_size}", "cycle": cycle, "status": "ok",
                    "model": model, "backend": "vllm", "precision": "bf16",
                    "batch_size": batch_size, "energy_source": source, "gpu_name": gpu,
                    "gpu_count": 1, "batching": "continuous",
                    "energy_per_output_token_j": joules + wiggle,
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _chat(model_id: str, gpu: str) -> pd.DataFrame:
    table = published()
    return table[
        (table["task"] == "lm-arena-chat") & (table["model_id"] == model_id)
        & (table["gpu"] == gpu) & (table["num_gpus"] == 1)
    ]  # fmt: skip


def test_match_by_batch_pairs_our_batch_size_with_their_mean_running_batch() -> None:
    table = plots.match_reference(ours())
    h100 = _chat("Qwen/Qwen3-8B", "H100").set_index("max_num_seqs")
    assert list(table["batch_size"]) == [3, 8, 16]
    assert table["published_model"].tolist()[1:] == ["Qwen/Qwen3-8B"] * 2
    assert table["gpu"].tolist()[1:] == ["H100"] * 2
    assert np.isnan(table["published_j"].iloc[0])  # nothing published near a batch of 3
    assert table["published_avg_batch"].tolist()[1:] == [h100.loc[8, "avg_batch"],
                                                         h100.loc[16, "avg_batch"]]  # fmt: skip
    expected = [h100.loc[8, "J_per_output_token"], h100.loc[16, "J_per_output_token"]]
    assert table["published_j"].tolist()[1:] == pytest.approx(expected)
    assert table["ours_j"].tolist() == pytest.approx([0.9, 0.5, 0.3])
    assert table["ratio"].tolist()[1:] == pytest.approx([0.5 / expected[0], 0.3 / expected[1]])
    assert (table["n"] == 3).all()


def test_match_by_concurrency_uses_max_num_seqs() -> None:
    b200 = _chat("Qwen/Qwen3-8B", "B200").set_index("max_num_seqs")
    table = plots.match_reference(ours(gpu="NVIDIA B200"), by="concurrency")
    assert table["gpu"].tolist()[1:] == ["B200"] * 2
    assert table["published_max_num_seqs"].tolist()[1:] == [8.0, 16.0]
    expected = [b200.loc[8, "J_per_output_token"], b200.loc[16, "J_per_output_token"]]
    assert table["published_j"].tolist()[1:] == pytest.approx(expected)
    with pytest.raises(LlemError, match="by='batch' or by='concurrency'"):
        plots.match_reference(ours(), by="tokens")  # type: ignore[arg-type]


def test_our_model_is_matched_by_name_from_a_local_path() -> None:
    table = plots.match_reference(ours(model="/models/cache/Qwen3-8B/"))
    assert set(table["published_model"].dropna()) == {"Qwen/Qwen3-8B"}


def test_an_unpublished_model_names_the_published_ones() -> None:
    with pytest.raises(LlemError, match=r"no published ML\.ENERGY figures for") as info:
        plots.reference(ours(model="SmolLM2-135M-Instruct"))
    assert "Qwen/Qwen3-8B" in str(info.value) and "model=" in str(info.value)
    with pytest.raises(LlemError, match="no published reference row"):
        plots.reference(ours(), model="gpt-17")
    with pytest.raises(LlemError, match="matches 2 published models"):
        plots.reference(ours(), model="Qwen3-235B")


def test_without_a_matching_gpu_every_published_gpu_is_shown() -> None:
    table = plots.match_reference(ours(gpu="cpu"), model="Qwen3-8B")
    assert set(table["gpu"].dropna()) == {"H100", "B200"}


def test_the_figure_shows_both_and_states_the_method_difference() -> None:
    df = ours(model="SmolLM2-135M-Instruct", gpu="", source="estimate")
    fig = plots.reference(df, model="Qwen/Qwen3-8B")
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "ours: SmolLM2-135M-Instruct / vllm (estimate)" in labels
    theirs = [lab for lab in labels if lab.startswith(REFERENCE_LABEL)]
    expected = [f"{REFERENCE_LABEL}: Qwen3-8B, 1× {gpu}, bfloat16" for gpu in ("B200", "H100")]
    assert sorted(theirs) == expected
    line = next(x for x in ax.lines if x.get_label() == theirs[1])
    h100 = _chat("Qwen/Qwen3-8B", "H100").sort_values("avg_batch")
    assert list(line.get_xdata()) == h100["avg_batch"].tolist()
    assert list(line.get_ydata()) == h100["J_per_output_token"].tolist()
    text = " ".join(t.get_text() for t in ax.texts)
    for phrase in ("steady-state window", "continuous batching", "avg_batch",
                   "energy source: estimate", "Models differ", "not a like-for-like"):  # fmt: skip
        assert phrase in text, phrase
    ratios = [t.get_text() for t in ax.texts if t.get_text().startswith("ours ÷")]
    assert len(ratios) == 2  # batch 8 and 16, each naming H100 and B200: no label over another
    assert all("H100 = " in r and "B200 = " in r for r in ratios)
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_the_figure_goes_into_the_callers_axes() -> None:
    fig, ax = plt.subplots()
    ax.set_title("mine")
    assert plots.reference(ours(), ax=ax, color="#010203") is fig
    assert ax.get_title() == "mine"
    assert ax.containers[0].lines[0].get_color() == "#010203"


def test_estimated_rows_are_their_own_hollow_series_never_averaged_in() -> None:
    mixed = pd.concat([ours(), ours(source="estimate").assign(energy_per_output_token_j=5.0)])
    table = plots.match_reference(mixed)
    measured, estimate = table[~table["estimate"]], table[table["estimate"]]
    assert measured["ours_j"].tolist() == pytest.approx([0.9, 0.5, 0.3])
    assert estimate["ours_j"].tolist() == pytest.approx([5.0, 5.0, 5.0])
    ax = plots.reference(mixed).axes[0]
    by_label = {c.get_label(): c for c in ax.containers}
    assert set(by_label) == {"ours: Qwen3-8B / vllm", "ours: Qwen3-8B / vllm (estimate)"}
    assert by_label["ours: Qwen3-8B / vllm (estimate)"].lines[0].get_markerfacecolor() == "none"
    assert by_label["ours: Qwen3-8B / vllm"].lines[0].get_markerfacecolor() != "none"
