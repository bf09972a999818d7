"""RaplMeter on a fake powercap tree, EstimateMeter's model, and make_meter's choices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llem_nb.config.sections import EnergyConfig
from llem_nb.energy.estimate import EstimateMeter, cpu_seconds
from llem_nb.energy.factory import make_meter, nvml_available
from llem_nb.energy.null import NullMeter
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.rapl import RaplMeter
from llem_nb.errors import MeterError
from llem_nb.testing import FakeGpu, FakeNvml

MAX_UJ = 262_143_328_850
BURN = "import os\nt=os.times()\nwhile os.times().user - t.user < 0.2: pass\n"


def rapl_tree(root: Path, start_uj: dict[int, int], max_uj: int | None = MAX_UJ) -> Path:
    """A powercap tree like the kernel's: packages, a subdomain and the control-type folder."""
    (root / "intel-rapl").mkdir(parents=True)
    for i, uj in start_uj.items():
        pkg = root / f"intel-rapl:{i}"
        pkg.mkdir()
        (pkg / "name").write_text(f"package-{i}\n")
        set_uj(root, i, uj)
        if max_uj is not None:
            (pkg / "max_energy_range_uj").write_text(f"{max_uj}\n")
        sub = root / f"intel-rapl:{i}:0"
        sub.mkdir()
        (sub / "name").write_text("core\n")
        (sub / "energy_uj").write_text("999999999\n")
    return root


def set_uj(root: Path, package: int, uj: int) -> None:
    (root / f"intel-rapl:{package}" / "energy_uj").write_text(f"{uj}\n")


def burn_cpu(seconds: float) -> None:
    """Spin until this process used ``seconds`` more CPU time."""
    t = cpu_seconds()
    while cpu_seconds() - t < seconds:
        pass


def test_rapl_available(tmp_path: Path) -> None:
    assert not RaplMeter.available(tmp_path / "missing")
    assert not RaplMeter.available(tmp_path)
    assert RaplMeter.available(rapl_tree(tmp_path / "sys", {0: 5}))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_rapl_unreadable_counter_is_unavailable(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path, {0: 5})
    (root / "intel-rapl:0" / "energy_uj").chmod(0)
    assert not RaplMeter.available(root)


def test_rapl_window_sums_packages_and_skips_subdomains(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path, {0: 1_000_000, 1: 7_000_000})
    meter = RaplMeter(root, poll_interval_s=3600)
    meter.start()
    set_uj(root, 0, 1_000_000 + 12_500_000)
    set_uj(root, 1, 7_000_000 + 2_000_000)
    reading = meter.stop()
    meter.close()
    assert reading.source == "rapl"
    assert [(d.label, d.index, d.energy_j) for d in reading.devices] == [
        ("package-0", 0, pytest.approx(12.5)),
        ("package-1", 1, pytest.approx(2.0)),
    ]
    assert reading.energy_j == pytest.approx(14.5)
    assert reading.flags == []


def test_rapl_wrap(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path, {0: MAX_UJ - 1_000_000})
    meter = RaplMeter(root, poll_interval_s=3600)
    meter.start()
    set_uj(root, 0, 3_000_000)
    assert meter.stop().devices[0].energy_j == pytest.approx(4.0)


def test_rapl_poll_catches_repeated_wraps(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path, {0: 100})
    meter = RaplMeter(root, poll_interval_s=3600)
    meter.start()
    for value in (MAX_UJ - 100, 50, MAX_UJ - 100, 100):
        set_uj(root, 0, value)
        meter.poll()
    expected_uj = (MAX_UJ - 200) + (50 + 100) + (MAX_UJ - 150) + (100 + 100)
    assert meter.stop().devices[0].energy_j == pytest.approx(expected_uj / 1e6)


def test_rapl_wrap_without_range_is_flagged(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path, {0: 5_000_000}, max_uj=None)
    meter = RaplMeter(root, poll_interval_s=3600)
    meter.start()
    set_uj(root, 0, 1_000)
    reading = meter.stop()
    assert reading.flags == ["rapl_wrap_unknown"]
    assert reading.devices[0].energy_j == 0.0


def test_rapl_idle_power_and_missing_tree(tmp_path: Path) -> None:
    meter = RaplMeter(rapl_tree(tmp_path / "sys", {0: 5}), poll_interval_s=0.01)
    assert meter.idle_power_w(0.03) == {"package-0": 0.0}
    with pytest.raises(MeterError, match="no RAPL package domains"):
        RaplMeter(tmp_path / "empty").start()


def test_estimate_counts_cpu_time_of_process() -> None:
    meter = EstimateMeter(cpu_w_per_core=12.5)
    before = cpu_seconds()
    meter.start()
    inner0 = cpu_seconds()
    burn_cpu(0.2)
    inner1 = cpu_seconds()
    reading = meter.stop()
    after = cpu_seconds()
    (dev,) = reading.devices
    assert reading.source == "estimate" and dev.method == "estimate"
    assert dev.energy_j is not None
    assert (inner1 - inner0) * 12.5 <= dev.energy_j <= (after - before) * 12.5
    assert reading.flags == ["energy_estimated"]
    assert "estimate" in reading.warnings[0] and "12.5 W per busy core" in reading.warnings[0]


def test_estimate_counts_waited_children() -> None:
    meter = EstimateMeter(cpu_w_per_core=10.0, note="why: no measured source")
    meter.start()
    subprocess.run([sys.executable, "-c", BURN], check=True)
    reading = meter.stop()
    assert reading.energy_j is not None and reading.energy_j >= 0.2 * 10.0
    assert reading.warnings[-1] == "why: no measured source"
    with pytest.raises(ValueError):
        EstimateMeter(cpu_w_per_core=0)


def fake_nvml(init_error: int | None = None) -> FakeNvml:
    return FakeNvml([FakeGpu(power_w=100.0)], init_error=init_error)


def test_make_meter_explicit_sources(tmp_path: Path) -> None:
    assert isinstance(make_meter(EnergyConfig(source="none"), [0]), NullMeter)
    est = make_meter(EnergyConfig(source="estimate", cpu_w_per_core=7.0), [0])
    assert isinstance(est, EstimateMeter) and est.cpu_w_per_core == 7.0
    nv = make_meter(EnergyConfig(source="nvml", poll_interval_s=0.01), [0], nvml=fake_nvml())
    assert isinstance(nv, NvmlMeter) and nv.poll_interval_s == 0.01
    root = rapl_tree(tmp_path, {0: 1})
    assert isinstance(make_meter(EnergyConfig(source="rapl"), [], rapl_root=root), RaplMeter)


def test_make_meter_explicit_sources_that_are_missing(tmp_path: Path) -> None:
    missing = fake_nvml(init_error=12)
    with pytest.raises(MeterError, match="NVML library not found") as err:
        make_meter(EnergyConfig(source="nvml"), [0], nvml=missing)
    assert "energy.source='auto'" in str(err.value)
    with pytest.raises(MeterError, match="uses no GPU"):
        make_meter(EnergyConfig(source="nvml"), [], nvml=fake_nvml())
    with pytest.raises(MeterError, match="RAPL") as err:
        make_meter(EnergyConfig(source="rapl"), [], rapl_root=tmp_path)
    assert "energy.source='auto'" in str(err.value)
    with pytest.raises(MeterError, match="no energy source named 'bogus'"):
        make_meter(EnergyConfig.model_construct(source="bogus"), [])


def test_make_meter_auto(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path / "sys", {0: 1})
    empty = tmp_path / "empty"
    auto = EnergyConfig(source="auto", poll_interval_s=0.01)
    assert isinstance(make_meter(auto, [0], nvml=fake_nvml(), rapl_root=root), NvmlMeter)

    cpu_only = fake_nvml()
    assert isinstance(make_meter(auto, [], nvml=cpu_only, rapl_root=root), RaplMeter)
    assert "nvmlInit" not in cpu_only.calls

    rapl = make_meter(auto, [0], nvml=fake_nvml(init_error=12), rapl_root=root)
    assert isinstance(rapl, RaplMeter)
    rapl.start()
    assert any("GPU energy not measured" in w for w in rapl.stop().warnings)

    est = make_meter(auto, [0], nvml=fake_nvml(init_error=12), rapl_root=empty)
    assert isinstance(est, EstimateMeter)
    est.start()
    warnings = est.stop().warnings
    assert any("NVML library not found" in w and "RAPL" in w for w in warnings)


def test_auto_with_the_real_pynvml(tmp_path: Path) -> None:
    ok, why = nvml_available()
    meter = make_meter(EnergyConfig(), [0], rapl_root=tmp_path)
    try:
        assert isinstance(meter, NvmlMeter if ok else EstimateMeter)
        if not ok:
            meter.start()
            assert any(why in w for w in meter.stop().warnings)
    finally:
        meter.close()


def test_estimate_counts_live_descendants_not_waited_for() -> None:
    """Engines like vLLM compute in worker processes that are alive across the window."""
    script = BURN + "\nimport sys, time\nprint('burnt', flush=True)\ntime.sleep(30)\n"
    meter = EstimateMeter(cpu_w_per_core=10.0)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        meter.start()
        assert child.stdout is not None and child.stdout.readline().strip() == "burnt"
        reading = meter.stop()
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
    assert reading.energy_j is not None and reading.energy_j >= 0.2 * 10.0
