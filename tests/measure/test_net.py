"""Net energy: signed per device, summed, clamped once on the total, flagged only then.

An idle-only window has no energy above idle: its net must come out near 0, never a
positive figure built from clamping each device's small negative noise to 0.
"""

from __future__ import annotations

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.base import DeviceReading, EnergyReading
from llem_nb.measure.accounting import NET_NOISE_SHARE, fill_energy
from llem_nb.results.schema import ExperimentResult
from llem_nb.testing.accuracy import idle_window


def result() -> ExperimentResult:
    config = ExperimentConfig(model="m")
    return ExperimentResult(experiment_id="e", config_hash="h" * 64, config=config.model_dump())


@pytest.mark.parametrize("avg_s", [0.0, 1.0])
@pytest.mark.parametrize("update_s", [0.0, 0.1])
@pytest.mark.parametrize("gpus", [1, 8])
def test_idle_only_window_nets_to_about_zero_unflagged(
    gpus: int, update_s: float, avg_s: float
) -> None:
    reading, idle = idle_window(gpus, update_s, avg_s)
    out = result()
    clamped = fill_energy(out, reading, idle, reading.t1 - reading.t0)
    assert out.energy_gross_j is not None and out.energy_net_j is not None
    assert abs(out.energy_net_j) <= 0.005 * out.energy_gross_j
    assert clamped == []
    signed = [d.energy_net_j for d in out.energy_devices]
    assert all(n is not None for n in signed)
    total = sum(n for n in signed if n is not None)
    assert out.energy_net_j == pytest.approx(max(total, 0.0))


def reading_of(*pairs: tuple[float, float]) -> tuple[EnergyReading, dict[str, float]]:
    devices = [DeviceReading(f"gpu{k}", gross, "counter", k) for k, (gross, _) in enumerate(pairs)]
    return EnergyReading("nvml", 10.0, devices), {f"gpu{k}": w for k, (_, w) in enumerate(pairs)}


def test_devices_keep_their_sign_and_the_total_sums_them() -> None:
    reading, idle = reading_of((1500.0, 100.0), (990.0, 100.0))
    out = result()
    assert fill_energy(out, reading, idle, 10.0) == []
    assert [d.energy_net_j for d in out.energy_devices] == [
        pytest.approx(500.0),
        pytest.approx(-10.0),
    ]
    assert out.energy_net_j == pytest.approx(490.0)


def test_a_total_below_idle_beyond_noise_is_clamped_once_and_flagged() -> None:
    reading, idle = reading_of((900.0, 100.0), (950.0, 100.0))
    out = result()
    clamped = fill_energy(out, reading, idle, 10.0)
    assert out.energy_net_j == 0.0
    assert [d.energy_net_j for d in out.energy_devices] == [
        pytest.approx(-100.0),
        pytest.approx(-50.0),
    ]
    assert clamped == ["gpu0+gpu1"]


def test_a_total_below_idle_within_noise_is_zero_unflagged() -> None:
    deficit = NET_NOISE_SHARE * 2000.0 / 2
    reading, idle = reading_of((1000.0 - deficit, 100.0), (1000.0, 100.0))
    out = result()
    assert fill_energy(out, reading, idle, 10.0) == []
    assert out.energy_net_j == 0.0
