"""The energy boundary through the real Harness: a simulated GPU and a simulated powercap tree.

The CPU package draws 40 W idle and 95 W while the simulated backend works, its DRAM 6 W
and 11 W; the backend works through the whole window (it starts at the window's first
edge and the window closes when it returns), so by hand: cpu gross = 95 W × window,
net = (95 − 40) W × window; dram gross = 11 W × window, net = 5 W × window.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.powercap import ROOT_ENV, PowercapMeter, Zone, ZoneReading
from llem_nb.measure.boundary import fill_boundary
from llem_nb.measure.harness import Harness
from llem_nb.measure.quality import FLAGS
from llem_nb.results.frame import load_results
from llem_nb.results.schema import ExperimentResult
from llem_nb.testing.powercap import SimPowercap
from llem_nb.testing.simulated import SimBackend, SimWorkload, sim_config
from llem_nb.testing.traces import LiveTrace

CPU_W = (40.0, 95.0)
DRAM_W = (6.0, 11.0)
UPDATE_S = 0.05


class HostWork(SimWorkload):
    """The simulated machine, its CPU package and DRAM busy whenever the GPUs are."""

    cpu: LiveTrace
    dram: LiveTrace

    def set_power(self, watts: float | None) -> None:
        super().set_power(watts)
        t = self.now()
        self.cpu.set(t, CPU_W[watts is not None])
        self.dram.set(t, DRAM_W[watts is not None])


def machine(root: Path) -> tuple[HostWork, SimPowercap]:
    base = SimWorkload.make(gpus=1, idle_w=[90.0], counter_update_s=0.1)
    work = HostWork(base.clock, base.nvml, base.traces, base.idle_w)
    work.cpu, work.dram = LiveTrace(CPU_W[0]), LiveTrace(DRAM_W[0])
    cap = SimPowercap(root, work.clock, update_s=UPDATE_S)
    cap.package(0, work.cpu, dram=work.dram, core=LiveTrace(30.0))
    return work, cap


def config(**over: Any) -> ExperimentConfig:
    extra = {"baseline": {"seconds": 1.0}, "measurement": {"min_window_s": 2.0}}
    return sim_config(**{**extra, "carbon": {"pue": 1.25}, **over})


def run(work: HostWork, cfg: ExperimentConfig, host: PowercapMeter | None) -> ExperimentResult:
    harness = Harness(SimBackend(cfg, work), work.meter(), clock=work.clock, host=host)
    return harness.run(cfg)


def test_a_gpu_run_carries_cpu_and_dram_with_their_own_idle(tmp_path: Path) -> None:
    work, cap = machine(tmp_path / "powercap")
    cfg = config()
    result = run(work, cfg, PowercapMeter.open(cap.root, clock=work.clock))
    t0, t1 = work.window()
    window_s = t1 - t0
    tick = UPDATE_S / window_s

    def last_update(t: float) -> float:
        return cap.origin + math.floor((t - cap.origin) / UPDATE_S + 1e-6) * UPDATE_S

    # Each read sees the last update before it; the one before t0 still saw idle power.
    before, inside = t0 - last_update(t0), last_update(t1) - t0
    assert result.energy_boundary == "gpu+cpu+dram"
    assert result.energy_gpu_j == result.energy_gross_j
    assert result.energy_gpu_j == pytest.approx(work.energy_j(t0, t1), rel=0.002)
    assert result.energy_gpu_net_j == pytest.approx(
        work.energy_j(t0, t1) - 90.0 * window_s, rel=0.005
    )
    assert result.energy_cpu_j == pytest.approx(cap.energy_j("cpu:package-0", t0, t1), rel=1e-9)
    assert result.energy_cpu_j == pytest.approx(40.0 * before + 95.0 * inside, rel=1e-9)
    assert result.energy_dram_j == pytest.approx(6.0 * before + 11.0 * inside, rel=1e-9)
    cpu, dram = result.energy_domains[1:]
    assert (cpu.domain, cpu.method, dram.domain) == ("cpu", "rapl", "dram")
    baseline_s = cfg.baseline.seconds
    assert cpu.idle_power_w == pytest.approx(40.0, rel=UPDATE_S / baseline_s)
    assert dram.idle_power_w == pytest.approx(6.0, rel=UPDATE_S / baseline_s)
    assert result.energy_cpu_net_j == pytest.approx(
        result.energy_cpu_j - cpu.idle_power_w * window_s, rel=1e-9
    )
    assert result.energy_cpu_net_j == pytest.approx(55.0 * window_s, rel=4 * tick)
    assert result.energy_dram_net_j == pytest.approx(5.0 * window_s, rel=8 * tick)
    assert [z["label"] for z in cpu.zones] == ["cpu:package-0"]
    boundary = result.energy_gpu_j + result.energy_cpu_j + result.energy_dram_j
    assert result.energy_boundary_j == pytest.approx(boundary)
    assert result.energy_boundary_net_j == pytest.approx(
        result.energy_gpu_net_j + result.energy_cpu_net_j + result.energy_dram_net_j
    )
    assert result.energy_facility_j == pytest.approx(1.25 * boundary)
    assert "modelled" in (result.energy_facility_method or "")
    assert not {"rapl_unreadable", "domain_unmeasured"} & set(result.quality_flags)

    path = tmp_path / "run.result.json"
    path.write_text(result.to_json())
    row = load_results(path, index=False).iloc[0]
    out = result.output_tokens
    assert out
    assert row["energy_boundary"] == "gpu+cpu+dram"
    for domain in ("gpu", "cpu", "dram", "boundary"):
        gross = getattr(result, f"energy_{domain}_j")
        net = getattr(result, f"energy_{domain}_net_j")
        assert row[f"energy_per_output_token_{domain}_j"] == pytest.approx(gross / out)
        assert row[f"energy_per_output_token_{domain}_net_j"] == pytest.approx(net / out)
    assert row["energy_facility_j"] == pytest.approx(1.25 * boundary)


@pytest.mark.parametrize("asked", [None, ["gpu", "cpu", "dram"]])
def test_an_unreadable_counter_names_the_fix_and_is_never_zero(
    tmp_path: Path, asked: list[str] | None
) -> None:
    """Left out and said, always; flagged when ``energy.domains`` named its domain."""
    work, cap = machine(tmp_path / "powercap")
    cap.lock("dram:package-0")
    cfg = config(energy={"domains": asked})
    result = run(work, cfg, PowercapMeter.open(cap.root, clock=work.clock))
    assert result.energy_boundary == "gpu+cpu"
    assert result.energy_dram_j is None and result.energy_dram_net_j is None
    assert ("rapl_unreadable" in result.quality_flags) == (asked is not None)
    assert "rapl_unreadable" in FLAGS
    said = [w for w in result.warnings if "dram:package-0" in w]
    assert said and "chmod" in said[0] and "root" in said[0]


def test_domains_choose_the_boundary_and_the_root_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, cap = machine(tmp_path / "powercap")
    monkeypatch.setenv(ROOT_ENV, str(cap.root))
    result = run(work, config(energy={"domains": ["gpu", "dram"]}), None)
    assert result.energy_boundary == "gpu+dram"
    assert result.energy_cpu_j is None
    assert result.energy_dram_j is not None and result.energy_dram_j > 0


def test_gpu_only_leaves_the_host_alone_and_a_missing_domain_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, _ = machine(tmp_path / "powercap")
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "no-such-tree"))
    only = run(work, config(energy={"domains": ["gpu"]}), None)
    assert only.energy_boundary == "gpu" and only.energy_cpu_j is None
    assert only.energy_boundary_j == only.energy_gross_j
    assert "domain_unmeasured" not in only.quality_flags
    asked = run(work, config(energy={"domains": ["gpu", "cpu"]}), None)
    assert asked.energy_boundary == "gpu"
    assert "domain_unmeasured" in asked.quality_flags
    assert any("'cpu' not measured" in w for w in asked.warnings)


def zone_reading(label: str, energy_j: float, span_s: float = 10.0) -> ZoneReading:
    domain = label.split(":")[0]
    return ZoneReading(Zone(domain, label, Path("/none"), None), energy_j, 0.0, span_s)


def test_net_is_signed_per_zone_summed_and_clamped_once_per_domain() -> None:
    """Packages at +5 J and −3 J net sum to 2 J, unclamped; DRAM at +1 J and −3 J clamps once."""
    cfg = config()
    result = ExperimentResult(
        experiment_id=cfg.experiment_id, config_hash=cfg.config_hash, config={}, window_s=10.0
    )
    zones = [
        zone_reading("cpu:package-0", 405.0),
        zone_reading("cpu:package-1", 397.0),
        zone_reading("dram:package-0", 61.0),
        zone_reading("dram:package-1", 57.0),
    ]
    idle = {"cpu:package-0": 40.0, "cpu:package-1": 40.0, "dram:package-0": 6.0}
    idle["dram:package-1"] = 6.0
    fill_boundary(result, cfg, window_s=10.0, zones=zones, host_idle=idle)
    assert result.energy_boundary == "cpu+dram"
    assert (result.energy_cpu_j, result.energy_cpu_net_j) == (802.0, pytest.approx(2.0))
    assert (result.energy_dram_j, result.energy_dram_net_j) == (118.0, 0.0)
    assert [d.net_clamped for d in result.energy_domains] == [False, True]
    assert result.quality_flags == ["net_energy_clamped"]
    assert result.energy_boundary_net_j == pytest.approx(2.0)
    assert result.energy_facility_j == pytest.approx(1.25 * 920.0)
