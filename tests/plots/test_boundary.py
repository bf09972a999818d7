"""The stacked boundary figure: heights are the per-domain means per token, from the files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from llem_nb import plots
from llem_nb.errors import LlemError
from llem_nb.results.frame import load_results
from tests.support.results_data import result, write

# batch → cycles of (gpu, cpu, dram) net joules over 100 output tokens; batch 8 has no DRAM.
NETS = {1: [(200.0, 50.0, 10.0), (220.0, 70.0, 14.0)], 8: [(80.0, 20.0, None)]}


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def frame(tmp_path: Path):
    rows = []
    for batch, cycles in NETS.items():
        for cycle, (gpu, cpu, dram) in enumerate(cycles):
            boundary = "gpu+cpu" + ("+dram" if dram is not None else "")
            rows.append(
                result(
                    {"batch_size": batch},
                    cycle,
                    energy_boundary=boundary,
                    energy_gpu_net_j=gpu,
                    energy_cpu_net_j=cpu,
                    energy_dram_net_j=dram,
                    energy_cpu_j=cpu + 40.0,
                    energy_dram_j=None if dram is None else dram + 6.0,
                )
            )
    return load_results(write(tmp_path, rows), index=False)


def test_bars_stack_gpu_cpu_dram_per_token_and_leave_unmeasured_out(tmp_path: Path) -> None:
    df = frame(tmp_path)
    ax = plots.energy_boundary(df, by="batch_size").axes[0]
    assert ax.get_legend_handles_labels()[1] == ["GPU", "CPU", "DRAM"]
    gpu, cpu, dram = ax.patches[:2], ax.patches[2:4], ax.patches[4:6]
    np.testing.assert_allclose([b.get_height() for b in gpu], [2.1, 0.8])
    np.testing.assert_allclose([b.get_height() for b in cpu], [0.6, 0.2])
    np.testing.assert_allclose([b.get_y() for b in cpu], [2.1, 0.8])
    assert dram[0].get_height() == pytest.approx(0.12) and dram[0].get_y() == pytest.approx(2.7)
    assert not dram[1].get_visible()
    assert [t.get_text() for t in ax.texts] == ["gpu+cpu+dram", "gpu+cpu"]


def test_no_domain_columns_is_a_clear_error(tmp_path: Path) -> None:
    df = frame(tmp_path)
    blank = df.assign(
        **{f"energy_per_output_token_{d}_net_j": np.nan for d in ("gpu", "cpu", "dram")}
    )
    with pytest.raises(LlemError, match="no per-domain energy"):
        plots.energy_boundary(blank)


def test_the_report_shows_the_boundary_when_a_host_domain_was_measured(tmp_path: Path) -> None:
    from llem_nb.reporting.build import build_html

    with_host = build_html(frame(tmp_path / "a"), reference=False)
    assert "id='fig-boundary'" in with_host
    gpu_only = frame(tmp_path / "b").assign(energy_cpu_j=np.nan, energy_dram_j=np.nan)
    assert "id='fig-boundary'" not in build_html(gpu_only, reference=False)
