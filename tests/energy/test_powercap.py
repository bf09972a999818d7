"""Powercap (RAPL) domains on a simulated tree and on this machine's own, when it has one."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.config.sections import EnergyConfig
from llem_nb.energy.factory import make_meter
from llem_nb.energy.powercap import DEFAULT_ROOT, ROOT_ENV, PowercapMeter, powercap_root, scan
from llem_nb.energy.rapl import RaplMeter
from llem_nb.testing import SimClock, constant, steps
from llem_nb.testing.powercap import SimPowercap


def counts(zones: list) -> dict[str, float | None]:
    return {z.zone.label: z.energy_j for z in zones}


def test_packages_and_dram_are_separate_domains_and_core_is_not_added(tmp_path: Path) -> None:
    """60 W + 40 W packages with 8 W and 6 W DRAM for 2 s: 200 J cpu, 28 J dram, core unseen."""
    clock = SimClock()
    cap = SimPowercap(tmp_path, clock, update_s=0.1)
    cap.package(0, constant(60.0), dram=constant(8.0), core=constant(35.0))
    cap.package(1, constant(40.0), dram=constant(6.0))
    meter = PowercapMeter.open(tmp_path, clock=clock)
    assert [z.label for z in meter.zones] == [
        "cpu:package-0", "dram:package-0", "cpu:package-1", "dram:package-1",
    ]  # fmt: skip
    assert meter.domains == ["cpu", "dram"]
    meter.begin()
    clock.sleep(2.0)
    got = counts(meter.end())
    assert got == {
        "cpu:package-0": pytest.approx(120.0),
        "dram:package-0": pytest.approx(16.0),
        "cpu:package-1": pytest.approx(80.0),
        "dram:package-1": pytest.approx(12.0),
    }


def test_counts_follow_a_trace_and_survive_wraps(tmp_path: Path) -> None:
    """A 100 → 250 W step, a counter range of 300 J: the 30 s span wraps it many times; the
    poller (every 1 s, well under one wrap) folds each in. Hand value: 100·10 + 250·20 J."""
    clock = SimClock()
    cap = SimPowercap(tmp_path, clock, update_s=0.1)
    cap.package(0, steps([(0.0, 100.0), (10.0, 250.0)]), max_uj=300_000_000, offset_uj=299_000_000)
    meter = PowercapMeter.open(tmp_path, clock=clock, poll_s=1.0)
    meter.begin()
    clock.sleep(30.0)
    (zone,) = meter.end()
    assert zone.energy_j == pytest.approx(100.0 * 10 + 250.0 * 20)
    assert zone.span_s == pytest.approx(30.0)
    assert not zone.wrap_unknown


def test_edges_count_the_last_update_before_each_read(tmp_path: Path) -> None:
    """Updates every 100 ms; reads at 0.25 s and 1.37 s see the 0.2 s and 1.3 s updates."""
    clock = SimClock()
    cap = SimPowercap(tmp_path, clock, update_s=0.1)
    cap.package(0, steps([(0.0, 10.0), (1.0, 110.0)]))
    meter = PowercapMeter.open(tmp_path, clock=clock, poll_s=0.05)
    clock.sleep(0.25)
    t0 = clock.now()
    meter.begin()
    clock.sleep(1.12)
    (zone,) = meter.end()
    assert zone.energy_j == pytest.approx(10.0 * 0.8 + 110.0 * 0.3)
    assert zone.energy_j == pytest.approx(cap.energy_j("cpu:package-0", t0, clock.now()))


def test_psys_stands_in_only_when_there_is_no_package(tmp_path: Path) -> None:
    clock = SimClock()
    both = SimPowercap(tmp_path / "both", clock)
    both.package(0, constant(50.0))
    both.psys(1, constant(90.0))
    tree = scan(tmp_path / "both")
    assert [z.label for z in tree.zones] == ["cpu:package-0"]
    assert any("psys" in n and "not counted" in n for n in tree.notes)
    alone = SimPowercap(tmp_path / "alone", clock)
    alone.psys(0, constant(90.0))
    tree = scan(tmp_path / "alone")
    assert [(z.label, z.platform) for z in tree.zones] == [("cpu:psys", True)]
    assert any("whole platform" in n for n in tree.notes)


def test_unreadable_counter_is_named_never_zero(tmp_path: Path) -> None:
    clock = SimClock()
    cap = SimPowercap(tmp_path, clock)
    cap.package(0, constant(50.0), dram=constant(5.0))
    cap.lock("dram:package-0")
    tree = scan(tmp_path)
    assert [z.label for z in tree.zones] == ["cpu:package-0"]
    assert list(tree.unreadable) == ["dram:package-0"]
    assert tree.unreadable_domains() == ["dram"]


def test_missing_range_wrap_is_flagged_not_counted(tmp_path: Path) -> None:
    clock = SimClock()
    cap = SimPowercap(tmp_path, clock, update_s=0.01)
    cap.package(0, constant(50.0), max_uj=None)
    meter = PowercapMeter.open(tmp_path, clock=clock)
    clock.sleep(1.0)
    meter.begin()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("0\n")
    cap.stop()
    clock.sleep(1.0)
    (zone,) = meter.end()
    assert zone.wrap_unknown


def test_root_comes_from_the_argument_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ROOT_ENV, raising=False)
    assert powercap_root() == DEFAULT_ROOT
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    assert powercap_root() == tmp_path
    assert powercap_root(tmp_path / "x") == tmp_path / "x"


@pytest.mark.skipif(not DEFAULT_ROOT.is_dir(), reason="this machine has no /sys/class/powercap")
def test_this_machines_powercap_tree() -> None:
    """Every zone found is either readable (and counts forward) or named with its error."""
    tree = scan(DEFAULT_ROOT)
    for zone in tree.zones:
        assert zone.domain in ("cpu", "dram")
        assert zone.read_uj() >= 0
    assert not {z.label for z in tree.zones} & set(tree.unreadable)
    meter = PowercapMeter(tree)
    meter.begin()
    for zone in meter.end():
        assert zone.energy_j is not None and zone.energy_j >= 0


def test_the_cpu_meter_reads_the_same_injected_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a GPU, ``auto`` picks RAPL from ``$LLEM_POWERCAP_ROOT`` (the simulator's tree)."""
    SimPowercap(tmp_path, SimClock()).package(0, constant(50.0))
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    meter = make_meter(EnergyConfig(), [])
    assert isinstance(meter, RaplMeter) and meter.root == tmp_path
