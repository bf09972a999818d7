"""RAPL on client Intel: the psys (platform) domain already contains the packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.energy.rapl import RaplMeter

MAX_UJ = 262_143_328_850


def domain(root: Path, index: int, name: str, uj: int) -> None:
    """A top-level powercap domain ``intel-rapl:<index>`` as the kernel lays it out."""
    path = root / f"intel-rapl:{index}"
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "max_energy_range_uj").write_text(f"{MAX_UJ}\n")
    (path / "energy_uj").write_text(f"{uj}\n")


def set_uj(root: Path, index: int, uj: int) -> None:
    (root / f"intel-rapl:{index}" / "energy_uj").write_text(f"{uj}\n")


def test_psys_is_left_out_when_packages_exist(tmp_path: Path) -> None:
    """Package 10 J inside a platform total of 16 J: the window used 10 J of CPU package."""
    domain(tmp_path, 0, "package-0", 1_000_000)
    domain(tmp_path, 1, "psys", 5_000_000)
    meter = RaplMeter(tmp_path, poll_interval_s=3600)
    meter.start()
    set_uj(tmp_path, 0, 1_000_000 + 10_000_000)
    set_uj(tmp_path, 1, 5_000_000 + 16_000_000)
    reading = meter.stop()
    meter.close()
    assert [d.label for d in reading.devices] == ["package-0"]
    assert reading.energy_j == pytest.approx(10.0)
    assert any("psys" in w and "package-0" in w for w in reading.warnings)
    assert "psys" in meter.describe() and "package-0" in meter.describe()


def test_psys_alone_is_used_and_labelled_as_the_platform(tmp_path: Path) -> None:
    domain(tmp_path, 0, "psys", 0)
    meter = RaplMeter(tmp_path, poll_interval_s=3600)
    meter.start()
    set_uj(tmp_path, 0, 7_500_000)
    reading = meter.stop()
    meter.close()
    (dev,) = reading.devices
    assert (dev.label, dev.name) == ("psys", "psys (platform)")
    assert reading.energy_j == pytest.approx(7.5)
    assert any("only the psys" in w for w in reading.warnings)


def test_packages_only_carry_no_domain_note(tmp_path: Path) -> None:
    domain(tmp_path, 0, "package-0", 0)
    domain(tmp_path, 1, "package-1", 0)
    meter = RaplMeter(tmp_path, poll_interval_s=3600)
    meter.start()
    set_uj(tmp_path, 0, 2_000_000)
    set_uj(tmp_path, 1, 3_000_000)
    reading = meter.stop()
    meter.close()
    assert reading.energy_j == pytest.approx(5.0)
    assert reading.warnings == []
