"""RaplMeter: CPU package energy from Linux powercap (``intel-rapl:N/energy_uj``).

Each package domain (``intel-rapl:0``, ``intel-rapl:1``, …; not the ``:N:M`` subdomains,
which the package already includes) exposes a µJ counter that wraps at
``max_energy_range_uj``. Client Intel CPUs add a top-level ``psys`` (platform) domain
that already contains the packages: it is left out when package domains exist, and
used alone, said so, when it is the only one. A window's energy is the sum of
wrap-corrected differences between reads; ``poll()`` adds a read so that windows
longer than one wrap period stay right (a daemon thread calls it every
``poll_interval_s`` while the window is open). Recent kernels make ``energy_uj``
readable by root only; ``available()`` says whether this process can read it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from llem_nb.energy.base import DeviceReading, EnergyMeter, EnergyReading
from llem_nb.errors import MeterError

DEFAULT_ROOT = Path("/sys/class/powercap")
READ_FIX = "run as root, or `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj`"
_PACKAGE = re.compile(r"^intel-rapl:(\d+)$")
PSYS = "psys"


def package_domains(root: Path = DEFAULT_ROOT) -> list[Path]:
    """Package-level RAPL domain folders under ``root``, in index order."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _PACKAGE.match(p.name))]
    return [p for _, p in sorted(found)]


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


class _Domain:
    """One package: label, wrap range, last raw value and energy accumulated since start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index = int(path.name.split(":")[1])
        name_file = path / "name"
        self.label = name_file.read_text().strip() if name_file.exists() else path.name
        range_file = path / "max_energy_range_uj"
        self.max_uj = _read_int(range_file) if range_file.exists() else None
        self.last_uj = 0
        self.total_uj = 0
        self.wrapped = False

    def reset(self) -> None:
        self.last_uj = _read_int(self.path / "energy_uj")
        self.total_uj = 0

    def update(self) -> None:
        now = _read_int(self.path / "energy_uj")
        diff = now - self.last_uj
        if diff < 0:
            self.wrapped = self.wrapped or self.max_uj is None
            diff += self.max_uj or 0
        self.total_uj += max(diff, 0)
        self.last_uj = now


class RaplMeter(EnergyMeter):
    """Energy of every CPU package RAPL exposes; labels from each domain's ``name`` file."""

    source = "rapl"

    def __init__(
        self, root: Path = DEFAULT_ROOT, *, poll_interval_s: float = 10.0, note: str | None = None
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.poll_interval_s = poll_interval_s
        self.note = note
        self._domains: list[_Domain] | None = None
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle: dict[str, float] = {}
        self._domain_note: str | None = None

    @staticmethod
    def available(root: Path = DEFAULT_ROOT) -> bool:
        """True when at least one package counter exists and this process can read it."""
        for path in package_domains(Path(root)):
            try:
                _read_int(path / "energy_uj")
            except (OSError, ValueError):
                continue
            return True
        return False

    def _open(self) -> list[_Domain]:
        if self._domains is None:
            try:
                self._domains = self._metered([_Domain(p) for p in package_domains(self.root)])
                for d in self._domains:
                    d.reset()
            except (OSError, ValueError) as exc:
                raise MeterError(
                    f"cannot read RAPL counters under {self.root}: {exc}",
                    fix=f"{READ_FIX}, or set energy.source='auto'",
                ) from exc
            if not self._domains:
                raise MeterError(
                    f"no RAPL package domains under {self.root}",
                    fix="use energy.source='auto' (falls back to the CPU estimate)",
                )
        return self._domains

    def _metered(self, domains: list[_Domain]) -> list[_Domain]:
        """The domains to sum: the packages, without ``psys`` that contains them."""
        packages = [d for d in domains if d.label != PSYS]
        if packages and len(packages) < len(domains):
            labels = ", ".join(d.label for d in packages)
            self._domain_note = (
                f"RAPL psys (platform) domain not counted: it already contains {labels}"
            )
            return packages
        if domains and not packages:
            self._domain_note = (
                "RAPL: only the psys (platform) domain is readable; its energy covers the "
                "whole platform (CPU packages, graphics, memory and more), not the CPU alone"
            )
        return domains

    def poll(self) -> None:
        """Fold the counters' progress since the last read into the totals (handles wraps)."""
        with self._lock:
            for d in self._open():
                d.update()

    def _poll_loop(self) -> None:
        while not self._halt.wait(self.poll_interval_s):
            self.poll()

    def _begin(self) -> None:
        with self._lock:
            for d in self._open():
                d.reset()
                d.wrapped = False

    def _start(self) -> None:
        self._begin()
        self._halt.clear()
        self._thread = threading.Thread(target=self._poll_loop, name="llem-rapl-poll", daemon=True)
        self._thread.start()

    def _stop_thread(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _stop(self, window_s: float) -> EnergyReading:
        self._stop_thread()
        self.poll()
        reading = EnergyReading(source=self.source, window_s=window_s)
        if self.note:
            reading.warnings.append(self.note)
        domains = self._open()
        if self._domain_note:
            reading.warnings.append(self._domain_note)
        for d in domains:
            reading.devices.append(
                DeviceReading(
                    label=d.label,
                    energy_j=d.total_uj / 1e6,
                    method="counter",
                    index=d.index,
                    name="psys (platform)" if d.label == PSYS else d.label,
                    idle_power_w=self._idle.get(d.label),
                )
            )
            if d.wrapped:
                reading.warnings.append(
                    f"{d.label} counter wrapped and max_energy_range_uj is unreadable; "
                    "its energy is a lower bound"
                )
                reading.flags.append("rapl_wrap_unknown")
        return reading

    def _idle_power_w(self, seconds: float) -> dict[str, float]:
        """Mean package watts over ``seconds``; later readings carry them as ``idle_power_w``."""
        self._begin()
        t0 = self.clock.now()
        deadline = t0 + seconds
        while (left := deadline - self.clock.now()) > 0:
            self.clock.sleep(min(left, self.poll_interval_s))
            self.poll()
        elapsed = self.clock.now() - t0
        self._idle = {d.label: d.total_uj / 1e6 / elapsed for d in self._open()}
        return dict(self._idle)

    def describe(self) -> str:
        """Where the counters are and which domains are summed (psys left out or alone)."""
        try:
            labels = ", ".join(d.label for d in self._open())
        except MeterError:
            return f"rapl ({self.root})"
        note = f"; {self._domain_note}" if self._domain_note else ""
        return f"rapl ({self.root}: {labels}{note})"

    def close(self) -> None:
        self._stop_thread()
        self._t0 = None
