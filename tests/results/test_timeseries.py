"""Timeseries: built from a window, ≤ 10 Hz, saved beside the result, loaded back everywhere."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

import llem_nb
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.energy.base import DeviceReading, EnergyReading, PowerSample, StateSample
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.errors import ResultError
from llem_nb.measure.harness import Harness
from llem_nb.results.frame import load_results
from llem_nb.results.store import ResultStore
from llem_nb.results.schema import ExperimentResult
from llem_nb.measure.series import build_timeseries
from llem_nb.results.timeseries import (
    COLUMNS,
    MAX_HZ,
    Timeseries,
    restore_timeseries,
    save_timeseries,
    timeseries_path_for,
)
from llem_nb.runners.base import Runner
from llem_nb.runners.exchange import Exchange, write_json
from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend, FakeGpu, FakeNvml, ramp, use_fake_backend

NEW_COLUMNS = (
    "ttft_ms_p90", "ttft_ms_p99", "itl_ms_p90", "itl_ms_p99", "latency_s_mean",
    "counter_vs_power_ratio", "prefill_energy_j", "decode_energy_j", "phase_method",
    "flops_estimate", "co2_g", "co2_net_g", "quality_flags", "timeseries_path",
)  # fmt: skip


def synthetic() -> EnergyReading:
    """Two GPUs, power every 10 ms for 1 s (gpu0 100→200 W, gpu1 flat 50 W), states every 50 ms."""
    samples = [PowerSample(i / 100, (100 + i, 50.0)) for i in range(101)]
    states = [
        StateSample(j / 20, (40.0 + j, 30.0), (1980.0, 1410.0), (1024.0, 0.0), (0, 1))
        for j in range(21)
    ]
    devices = [
        DeviceReading("gpu0", 150.0, "counter", 0, power_method="instant"),
        DeviceReading("gpu3", 50.0, "counter", 3, power_method="instant"),
    ]
    return EnergyReading("nvml", 1.0, devices, samples=samples, states=states)


def test_rows_at_most_ten_per_second_with_energy_preserving_power() -> None:
    series = build_timeseries(synthetic(), 0.0, 1.0, [(0.0, 0.2)], {"experiment_id": "x"})
    assert series is not None
    frame = series.to_frame()
    assert list(frame.columns) == list(COLUMNS)
    gpu0 = frame[frame["gpu"] == "gpu0"]
    assert list(gpu0["t_s"]) == pytest.approx([j / 10 for j in range(11)])
    assert (frame.groupby("gpu")["t_s"].diff().dropna() >= 0.1 - 1e-9).all()
    assert list(gpu0["power_w"][:10]) == pytest.approx([105 + 10 * j for j in range(10)])
    assert gpu0["power_w"].iloc[-1] == pytest.approx(200.0)
    joules = (gpu0["power_w"][:10] * 0.1).sum()
    assert joules == pytest.approx(150.0)
    assert frame[frame["gpu"] == "gpu3"]["power_w"].tolist() == pytest.approx([50.0] * 11)
    assert list(gpu0["phase"][:3]) == ["prefill", "prefill", "decode"]
    assert frame["gpu_index"].tolist().count(3) == 11
    assert frame["throttle_reasons"].dtype == "Int64"
    assert frame.attrs["phases_s"] == [[0.0, 0.2]] and frame.attrs["experiment_id"] == "x"


def test_no_states_no_timeseries() -> None:
    reading = synthetic()
    reading.states = []
    assert build_timeseries(reading, 0.0, 1.0) is None


def test_parquet_round_trip(tmp_path: Path) -> None:
    series = build_timeseries(synthetic(), 0.0, 1.0, [], {"cycle": 2})
    assert series is not None
    path = tmp_path / "a.timeseries.parquet"
    series.write(path)
    back = Timeseries.read(path)
    assert back.meta == series.meta
    pd.testing.assert_frame_equal(back.to_frame(), series.to_frame())
    assert [p.name for p in tmp_path.iterdir()] == ["a.timeseries.parquet"]


def test_paths_beside_results() -> None:
    assert timeseries_path_for(Path("d/abc_c001.result.json")) == Path(
        "d/abc_c001.timeseries.parquet"
    )
    assert timeseries_path_for(Path("x/h_result.json")) == Path("x/h.timeseries.parquet")


def measured_result(tmp: Path) -> ExperimentResult:
    """A real window: fake backend, fake NVML GPU."""
    backend = use_fake_backend()
    FakeBackend.step_s = 0.002
    config = validate_experiment(
        {"model": "m", "backend": backend, "n_prompts": 4, "batch_size": 2,
         "max_output_tokens": 50, "baseline": {"seconds": 0.1}}
    )  # fmt: skip
    fake = FakeNvml([FakeGpu(power_w=ramp(80.0, 300.0, 5.0))])
    meter = NvmlMeter([0], poll_interval_s=0.005, nvml=fake)
    try:
        return Harness(meter=meter).run(config, study="ts")
    finally:
        meter.close()
        FakeBackend.step_s = 0.0


def test_store_writes_it_and_every_loader_finds_it(tmp_path: Path) -> None:
    result = measured_result(tmp_path)
    live = llem_nb.load_timeseries(result)
    final = ResultStore(tmp_path).write(result)
    assert result.timeseries_file == f"{result.experiment_id}_c000.timeseries.parquet"
    assert (tmp_path / result.timeseries_file).is_file()
    assert '"timeseries_file"' in final.read_text()
    stored = ExperimentResult.model_validate_json(final.read_text())
    from_dir = llem_nb.load_timeseries(stored, tmp_path)
    frame = load_results(tmp_path)
    from_row = llem_nb.load_timeseries(frame.iloc[0])
    for loaded in (from_dir, from_row):
        pd.testing.assert_frame_equal(loaded, live)
    assert len(live) >= 2 and live["power_w"].notna().all()
    assert live.attrs["experiment_id"] == result.experiment_id


def test_timeseries_survives_the_exchange_dir(tmp_path: Path) -> None:
    result = measured_result(tmp_path)
    exchange = Exchange(result.experiment, cycle=0, study="ts")
    try:
        save_timeseries(result, exchange.result_path)
        write_json(exchange.result_path, result.model_dump(mode="json"))
        back = exchange.read_result()
    finally:
        exchange.cleanup()
    assert back is not None and back.timeseries_file is None
    ResultStore(tmp_path).write(back)
    assert back.timeseries_file is not None and (tmp_path / back.timeseries_file).is_file()


def test_loading_without_a_timeseries_says_why(tmp_path: Path) -> None:
    result = ExperimentResult.failed(validate_experiment({"model": "m"}), RuntimeError("x"))
    with pytest.raises(ResultError, match="no timeseries"):
        llem_nb.load_timeseries(result)
    with pytest.raises(ResultError, match="no timeseries_path"):
        llem_nb.load_timeseries(pd.Series({"timeseries_path": math.nan}))
    with pytest.raises(ResultError, match="no timeseries file"):
        llem_nb.load_timeseries(tmp_path / "missing.timeseries.parquet")
    result.timeseries_file = "x.timeseries.parquet"
    with pytest.raises(ResultError, match="study directory"):
        llem_nb.load_timeseries(result)


def test_without_pyarrow_the_result_keeps_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = measured_result(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    ResultStore(tmp_path).write(result)
    assert result.timeseries_file is None
    assert any("timeseries not saved" in w and "pyarrow" in w for w in result.warnings)


def test_new_columns_present_and_nan_where_not_measured(tmp_path: Path) -> None:
    measured = measured_result(tmp_path)
    cpu = ExperimentResult(
        experiment_id="cpu", config_hash="h" * 64, config={"model": "m"}, energy_source="estimate"
    )
    store = ResultStore(tmp_path)
    store.write(measured)
    store.write(cpu)
    frame = load_results(tmp_path).set_index("experiment_id")
    assert set(NEW_COLUMNS) <= set(frame.columns)
    blank = frame.loc["cpu"]
    for name in NEW_COLUMNS:
        if name != "quality_flags":
            assert pd.isna(blank[name]), name
    got = frame.loc[measured.experiment_id]
    assert got["counter_vs_power_ratio"] == pytest.approx(1.0, rel=0.02)
    assert got["prefill_energy_j"] + got["decode_energy_j"] == pytest.approx(got["energy_gross_j"])
    assert got["phase_method"] == "power" and Path(got["timeseries_path"]).is_file()
    assert "short_window" in got["quality_flags"]
    for name in ("ttft_ms_p90", "itl_ms_p99", "latency_s_mean"):
        assert got[name] > 0


def test_a_timeseries_missing_on_the_way_back_becomes_a_warning(tmp_path: Path) -> None:
    result = ExperimentResult.failed(validate_experiment({"model": "m"}), RuntimeError("x"))
    result.timeseries_file = "gone.timeseries.parquet"
    restore_timeseries(result, tmp_path / "h_result.json")
    assert result.timeseries_file is None
    assert any("timeseries lost on the way back" in w for w in result.warnings)


class FakeGpuRunner(Runner):
    """Runs each experiment in-process against a fake NVML GPU (a Runner, as users write)."""

    name = "local"

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        fake = FakeNvml([FakeGpu(power_w=ramp(80.0, 300.0, 5.0))])
        meter = NvmlMeter([0], poll_interval_s=0.005, nvml=fake)
        try:
            return Harness(meter=meter).run(config, cycle=cycle, study=study)
        finally:
            meter.close()


def test_a_study_run_writes_each_timeseries_beside_its_result(tmp_path: Path) -> None:
    backend = use_fake_backend()
    study = Study(
        "ts", model="m", backend=backend, n_prompts=2, max_output_tokens=20, baseline__seconds=0.05
    )
    study = study.sweep(batch_size=[1, 2]).cycles(2)
    FakeBackend.step_s = 0.002
    try:
        out = study.run(runner=FakeGpuRunner(), results_dir=tmp_path, progress=False)
    finally:
        FakeBackend.step_s = 0.0
    frame = out.df
    assert len(frame) == 4 and frame["timeseries_path"].notna().all()
    for path in frame["timeseries_path"]:
        assert Path(path).parent == out.dir and Path(path).is_file()
    last = llem_nb.load_timeseries(frame.iloc[-1])
    t_s = last["t_s"].to_numpy()
    # at most MAX_HZ rows a second, over the polled span, which brackets the window
    assert len(t_s) >= 2 and (t_s[1:] - t_s[:-1]).min() >= 1 / MAX_HZ - 1e-9
    assert t_s[0] <= 0 and t_s[-1] >= last.attrs["window_s"] - 1 / MAX_HZ
    assert last.attrs["experiment_id"] == frame.iloc[-1]["experiment_id"]
