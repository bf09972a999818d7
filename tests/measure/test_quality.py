"""Quality flags from synthetic readings: each rule at, just inside and just past its threshold."""

from __future__ import annotations

import pytest

from llem_nb.energy.base import DeviceReading, EnergyReading, StateSample
from llem_nb.measure.quality import (
    MAX_COUNTER_POWER_DISAGREEMENT,
    MIN_POWER_SAMPLES,
    MIN_WINDOW_S,
    assess,
    throttle_names,
)


def reading(
    *,
    energy_j: float = 100.0,
    power_j: float = 100.0,
    samples: int = 200,
    temps: tuple[float, ...] = (50.0, 52.0),
    throttle: tuple[int, ...] = (0, 0),
    source: str = "nvml",
    flags: list[str] | None = None,
) -> EnergyReading:
    device = DeviceReading(
        "gpu0", energy_j, "counter", 0, samples=samples, power_integral_j=power_j
    )
    states = [
        StateSample(float(i), (t,), (1980.0,), (1.0,), (r,))
        for i, (t, r) in enumerate(zip(temps, throttle, strict=True))
    ]
    return EnergyReading(
        source, 10.0, [device], warnings=["meter says so"] * len(flags or []),
        flags=list(flags or []), states=states,
    )  # fmt: skip


def flags(r: EnergyReading, window_s: float = 10.0, **kw: object) -> list[str]:
    return assess(r, window_s=window_s, **kw).flags  # type: ignore[arg-type]


def test_a_clean_window_has_no_flags() -> None:
    out = assess(reading(), window_s=10.0)
    assert out.flags == [] and out.warnings == []


def test_short_window() -> None:
    assert flags(reading(), window_s=MIN_WINDOW_S) == []
    assert flags(reading(), window_s=MIN_WINDOW_S - 0.01) == ["short_window"]


@pytest.mark.parametrize(
    ("energy_j", "flagged"),
    [(100.0 * (1 + MAX_COUNTER_POWER_DISAGREEMENT) - 0.01, False), (106.0, True), (94.0, True)],
)
def test_counter_vs_power(energy_j: float, flagged: bool) -> None:
    assert ("counter_power_disagree" in flags(reading(energy_j=energy_j))) is flagged


def test_net_clamped_other_processes_and_warmup_cooldown() -> None:
    out = assess(
        reading(),
        window_s=10.0,
        net_clamped=["gpu0"],
        other_processes={"gpu0": [17, 23]},
        warmup_converged=False,
        cooldown_reached=False,
    )
    assert out.flags == [
        "net_energy_clamped", "other_processes", "warmup_not_converged", "cooldown_timeout",
    ]  # fmt: skip
    assert any("17, 23" in w for w in out.warnings)
    assert flags(reading(), warmup_converged=None, cooldown_reached=None) == []


def test_temperature_drift() -> None:
    assert flags(reading(temps=(40.0, 50.0))) == []
    assert flags(reading(temps=(40.0, 50.5))) == ["temperature_drift"]


def test_throttling_other_than_idle() -> None:
    assert flags(reading(throttle=(0x1, 0x1))) == []
    out = assess(reading(throttle=(0x1, 0x4 | 0x40)), window_s=10.0)
    assert out.flags == ["throttled", "throttled_power_cap", "throttled_thermal"]
    assert "software power cap" in out.warnings[0] and "hardware thermal" in out.warnings[0]
    assert throttle_names(0x800) == ["0x800"]


def test_few_samples_only_for_a_polled_source() -> None:
    assert flags(reading(samples=MIN_POWER_SAMPLES)) == []
    assert flags(reading(samples=MIN_POWER_SAMPLES - 1)) == ["few_power_samples"]
    assert flags(reading(samples=0, source="rapl")) == []


def test_meter_flags_are_kept_and_estimate_flagged_once() -> None:
    kept = assess(reading(flags=["mig_whole_gpu"]), window_s=10.0)
    assert kept.flags == ["mig_whole_gpu"] and kept.warnings == ["meter says so"]
    assert flags(reading(source="estimate")) == ["energy_estimated"]
    assert flags(reading(source="estimate", flags=["energy_estimated"])) == ["energy_estimated"]


def test_temperature_drift_is_the_range_not_last_minus_first() -> None:
    mid_peak = assess(reading(temps=(50.0, 65.0, 51.0), throttle=(0, 0, 0)), window_s=10.0)
    assert mid_peak.flags == ["temperature_drift"]
    assert mid_peak.warnings == ["gpu0 temperature ranged 50–65 °C during the window"]
    assert flags(reading(temps=(60.0, 49.0), throttle=(0, 0))) == ["temperature_drift"]
    assert flags(reading(temps=(50.0, 60.0), throttle=(0, 0))) == []


def test_throttling_anywhere_in_the_window_counts() -> None:
    out = assess(reading(temps=(50.0, 50.0, 50.0), throttle=(0, 0x4, 0x1)), window_s=10.0)
    assert out.flags == ["throttled", "throttled_power_cap"]
    assert out.warnings[0] == "gpu0 clocks were throttled during the window: software power cap"


def test_throttle_reasons_are_read_per_gpu() -> None:
    devices = [
        DeviceReading(f"gpu{k}", 100.0, "counter", k, samples=200, power_integral_j=100.0)
        for k in (0, 1)
    ]
    states = [
        StateSample(0.0, (50.0, 50.0), (1980.0, 1980.0), (1.0, 1.0), (0, 0x20)),
        StateSample(1.0, (50.0, 50.0), (1980.0, 1980.0), (1.0, 1.0), (0x1, 0)),
    ]
    out = assess(EnergyReading("nvml", 10.0, devices, states=states), window_s=10.0)
    assert out.flags == ["throttled", "throttled_thermal"]
    assert out.warnings == [
        "gpu1 clocks were throttled during the window: software thermal slowdown",
        "gpu1: clocks held down by temperature (software or hardware)",
    ]


def test_every_rule_says_its_numbers_in_its_warning() -> None:
    out = assess(
        reading(energy_j=106.0, samples=5, temps=(40.0, 55.0), throttle=(0x1, 0x8)),
        window_s=4.0,
        net_clamped=["gpu0"],
        other_processes={"gpu0": [17, 23]},
        warmup_converged=False,
        cooldown_reached=False,
    )
    assert out.flags == [
        "short_window", "counter_power_disagree", "net_energy_clamped", "temperature_drift",
        "other_processes", "throttled", "throttled_hw_slowdown", "few_power_samples",
        "warmup_not_converged", "cooldown_timeout",
    ]  # fmt: skip
    assert out.warnings == [
        "window 4.00 s < 5 s: edges dominate",
        "gpu0: energy counter / power integral = 1.060 (more than 5% apart)",
        "gpu0: idle power × window exceeded gross energy",
        "gpu0 temperature ranged 40–55 °C during the window",
        "gpu0 was also used by PID(s) 17, 23",
        "gpu0 clocks were throttled during the window: hardware slowdown",
        "gpu0: hardware slowdown (power supply or thermal protection)",
        "gpu0: 5 power samples (< 10); the cross-check is weak",
        "warm-up latency CV stayed above the threshold",
        "the GPU did not cool down before the window",
    ]


def test_estimate_warning_and_a_repeated_flag_listed_once() -> None:
    out = assess(reading(source="estimate", temps=(None, 70.0), throttle=(0, 0)), window_s=10.0)  # type: ignore[arg-type]
    assert out.flags == ["energy_estimated"]
    assert out.warnings == ["energy is a CPU-time model estimate, not a measurement"]
    twice = assess(reading(), window_s=10.0, net_clamped=["gpu0", "gpu1"])
    assert twice.flags == ["net_energy_clamped"] and len(twice.warnings) == 2
    assert throttle_names(0x4 | 0x100) == ["software power cap", "display clock setting"]


def test_throttle_causes_are_named_together_and_an_estimate_warned_once() -> None:
    out = assess(reading(throttle=(0x4, 0x20)), window_s=10.0)
    assert out.warnings[0] == (
        "gpu0 clocks were throttled during the window: software power cap, "
        "software thermal slowdown"
    )
    kept = assess(reading(source="estimate", flags=["energy_estimated"]), window_s=10.0)
    assert kept.warnings == ["meter says so"]
