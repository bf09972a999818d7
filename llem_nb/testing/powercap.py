"""SimPowercap: a powercap (RAPL) tree in a directory, its counters advancing by power traces.

Built as the kernel lays it out (``intel-rapl:N`` packages with ``name``,
``max_energy_range_uj`` and ``energy_uj``; ``intel-rapl:N:M`` subzones inside their
package and linked at the top, as ``/sys/class/powercap`` lists them; optionally a
``psys`` zone), under any directory a test chooses; point the meter at it with
``LLEM_POWERCAP_ROOT`` or ``root=``. On a ``SimClock`` a background loop rewrites every
``energy_uj`` each ``update_s`` (RAPL updates about every 1 ms), so a counter holds the
trace's energy at its last update, in µJ, modulo its range. ``energy_j(label, t0, t1)``
is what an exact meter reads between clock instants ``t0`` and ``t1``.

    cap = SimPowercap(tmp_path, clock)
    cap.package(0, constant(60.0), dram=constant(8.0))
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from llem_nb.testing.clock import SimClock
from llem_nb.testing.traces import Trace

MAX_UJ = 262_143_328_850


@dataclass
class SimZone:
    path: Path
    trace: Trace
    max_uj: int | None
    offset_uj: int
    locked: bool = False


class SimPowercap:
    """A simulated powercap tree under ``root`` on ``clock`` (traces' 0 = when it was built)."""

    def __init__(self, root: Path, clock: SimClock, *, update_s: float = 0.001) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.origin = clock.now()
        self.update_s = update_s
        self.zones: dict[str, SimZone] = {}
        self._loop = clock.loop(self._tick, first_due=self.origin, name="sim-powercap")

    def _zone(
        self, name: str, dirname: Path, trace: Trace, max_uj: int | None, offset_uj: int
    ) -> SimZone:
        dirname.mkdir(parents=True, exist_ok=True)
        (dirname / "name").write_text(f"{name}\n")
        if max_uj is not None:
            (dirname / "max_energy_range_uj").write_text(f"{max_uj}\n")
        zone = SimZone(dirname, trace, max_uj, offset_uj)
        self._write(zone, self.clock.now())
        return zone

    def package(
        self,
        index: int,
        trace: Trace,
        *,
        dram: Trace | None = None,
        core: Trace | None = None,
        max_uj: int | None = MAX_UJ,
        offset_uj: int = 0,
    ) -> None:
        """Package ``index`` (label ``cpu:package-N``), with optional ``dram`` and ``core``
        subzones (``dram:package-N``; ``core`` lies inside the package and is never counted)."""
        top = self.root / f"intel-rapl:{index}"
        self.zones[f"cpu:package-{index}"] = self._zone(
            f"package-{index}", top, trace, max_uj, offset_uj
        )
        subs = [("core", core), ("dram", dram)]
        for k, (name, sub) in enumerate([s for s in subs if s[1] is not None]):
            path = top / f"intel-rapl:{index}:{k}"
            self.zones[f"{name}:package-{index}"] = self._zone(name, path, sub, max_uj, offset_uj)  # type: ignore[arg-type]
            (self.root / path.name).symlink_to(path)

    def psys(self, index: int, trace: Trace, *, max_uj: int | None = MAX_UJ) -> None:
        """The platform zone ``intel-rapl:<index>`` named ``psys`` (label ``cpu:psys``)."""
        path = self.root / f"intel-rapl:{index}"
        self.zones["cpu:psys"] = self._zone("psys", path, trace, max_uj, 0)

    def lock(self, label: str) -> None:
        """Make ``label``'s counter unreadable to this process, as kernels since 2020 make it
        for non-root users (``chmod 0``; root reads through that, so there the file is
        swapped for a folder, which no one can read as a number)."""
        self.zones[label].locked = True
        target = self.zones[label].path / "energy_uj"
        target.chmod(0)
        if os.geteuid() == 0:
            target.unlink()
            target.mkdir()

    def _tick_s(self, t: float) -> float:
        """The last update at or before clock instant ``t``, on the traces' timeline."""
        return max(math.floor((t - self.origin) / self.update_s + 1e-6), 0) * self.update_s

    def _counter_uj(self, zone: SimZone, t: float) -> int:
        tick = self._tick_s(t)
        value = zone.offset_uj + round(zone.trace.energy(max(tick, 0.0)) * 1e6)
        return value % zone.max_uj if zone.max_uj else value

    def _write(self, zone: SimZone, t: float) -> None:
        if not zone.locked:
            (zone.path / "energy_uj").write_text(f"{self._counter_uj(zone, t)}\n")

    def _tick(self, now: float) -> float:
        for zone in self.zones.values():
            self._write(zone, now)
        k = math.floor((now - self.origin) / self.update_s + 1e-6) + 1
        return self.origin + k * self.update_s - 1e-9

    def elapsed(self, t: float) -> float:
        """Clock instant → seconds on the traces' timeline."""
        return t - self.origin

    def energy_j(self, label: str, t0: float, t1: float) -> float:
        """Joules the counter of ``label`` advances between reads at clock instants t0 < t1
        (the traces' energy at the last update before each read)."""
        zone = self.zones[label]
        return zone.trace.energy(self._tick_s(t1)) - zone.trace.energy(self._tick_s(t0))

    def stop(self) -> None:
        self._loop.stop()
