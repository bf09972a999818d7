"""The host's energy domains beyond the GPU: CPU packages and DRAM from Linux powercap (RAPL).

Layout the kernel exposes under ``/sys/class/powercap``: ``intel-rapl:N`` is package N
(``name`` ``package-N``; on client Intel a top-level ``psys`` platform zone too), and
``intel-rapl:N:M`` its subzones (``core``, ``uncore``, ``dram``). ``core``/``uncore``
lie inside the package and are never added; ``dram`` is outside it and is its own
domain. ``psys`` contains the packages, so it stands in for the CPU only when no package
zone exists (and says so). Each ``energy_uj`` counter wraps at ``max_energy_range_uj``;
``poll`` folds progress in often enough that no wrap is missed. Since the 2020 RAPL
access change (CVE-2020-8694) ``energy_uj`` is readable by root only: such a zone is
reported as unreadable with the fix, never as zero.

``LLEM_POWERCAP_ROOT`` points at another tree (the simulator's, in tests).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llem_nb.energy.clock import SYSTEM_CLOCK, Clock, Loop

DEFAULT_ROOT = Path("/sys/class/powercap")
ROOT_ENV = "LLEM_POWERCAP_ROOT"
HOST_DOMAINS = ("cpu", "dram")
POLL_S = 5.0
_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


def powercap_root(root: Path | str | None = None) -> Path:
    """The tree to read: ``root``, else ``$LLEM_POWERCAP_ROOT``, else ``/sys/class/powercap``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def read_fix(root: Path) -> str:
    """What makes ``energy_uj`` readable (the message every unreadable zone carries)."""
    files = f"{root}/intel-rapl:*/energy_uj {root}/intel-rapl:*/*/energy_uj"
    return f"run as root, or `sudo chmod a+r {files}`"


@dataclass
class Zone:
    """One counter: its domain (``cpu`` or ``dram``), label and wrap range."""

    domain: str
    label: str
    path: Path
    max_uj: int | None
    platform: bool = False

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


@dataclass
class Tree:
    """The zones to meter, and those found but unreadable (with the error)."""

    root: Path
    zones: list[Zone] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def domains(self) -> list[str]:
        """Domains with at least one readable zone, in ``HOST_DOMAINS`` order."""
        found = {z.domain for z in self.zones}
        return [d for d in HOST_DOMAINS if d in found]

    def unreadable_domains(self) -> list[str]:
        found = {label.split(":")[0] for label in self.unreadable}
        return [d for d in HOST_DOMAINS if d in found and d not in self.domains()]


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _max_uj(path: Path) -> int | None:
    text = _text(path / "max_energy_range_uj")
    return int(text) if text and text.isdigit() else None


def _zone_dirs(base: Path) -> list[Path]:
    """Every ``intel-rapl:*`` zone once: ``/sys/class/powercap`` lists subzones at the top
    (symlinks) and inside their package; a copied tree may have only one of the two."""
    seen: dict[str, Path] = {}
    for path in sorted(base.iterdir()):
        if not _ZONE.match(path.name):
            continue
        seen.setdefault(path.name, path)
        if path.is_dir():
            for sub in sorted(path.iterdir()):
                if _ZONE.match(sub.name):
                    seen.setdefault(sub.name, sub)
    return list(seen.values())


def scan(root: Path | str | None = None) -> Tree:
    """The CPU package and DRAM zones under the powercap tree (none: an empty ``Tree``)."""
    base = powercap_root(root)
    tree = Tree(base)
    if not base.is_dir():
        return tree
    found: list[tuple[int, int, Zone]] = []
    platform: list[Zone] = []
    for path in _zone_dirs(base):
        m = _ZONE.match(path.name)
        assert m is not None
        name = _text(path / "name") or path.name
        package, sub = int(m.group(1)), m.group(2)
        if sub is None and name == "psys":
            platform.append(Zone("cpu", "cpu:psys", path, _max_uj(path), platform=True))
        elif sub is None:
            found.append((package, -1, Zone("cpu", f"cpu:{name}", path, _max_uj(path))))
        elif name == "dram":
            parent = _text(base / f"intel-rapl:{package}" / "name") or f"package-{package}"
            zone = Zone("dram", f"dram:{parent}", path, _max_uj(path))
            found.append((package, int(sub), zone))
    zones = [z for _, _, z in sorted(found, key=lambda f: (f[0], f[1]))]
    if not any(z.domain == "cpu" for z in zones) and platform:
        zones = platform + zones
        tree.notes.append(
            "RAPL: no package zone, so the cpu domain is the psys (platform) zone; it covers "
            "the whole platform (CPU packages, graphics, memory and more), not the CPU alone"
        )
    elif platform:
        tree.notes.append("RAPL psys (platform) zone not counted: it contains the packages")
    for zone in zones:
        try:
            zone.read_uj()
        except (OSError, ValueError) as exc:
            tree.unreadable[zone.label] = getattr(exc, "strerror", None) or str(exc)
            continue
        tree.zones.append(zone)
    return tree


@dataclass
class _Count:
    """Wrap-corrected µJ of one zone since ``begin``; the last raw value and when it was read."""

    last_uj: int = 0
    total_uj: int = 0
    t_first: float = 0.0
    t_last: float = 0.0
    wrap_unknown: bool = False
    failed: str | None = None


@dataclass
class ZoneReading:
    """One zone over a span: joules, the instants of its first and last read, problems."""

    zone: Zone
    energy_j: float | None
    t0: float
    t1: float
    wrap_unknown: bool = False
    failed: str | None = None

    @property
    def span_s(self) -> float:
        return self.t1 - self.t0


class PowercapMeter:
    """Counts the chosen host domains' zones between ``begin`` and ``end`` (same clock as the
    GPU meter; each read time kept, so idle is subtracted over the span each count covers).

    A background loop (``clock.loop``) polls every ``poll_s`` so that a counter wraps at
    most once between reads (a package at 250 W wraps a 262 kJ range in ~17 min).
    """

    def __init__(
        self,
        tree: Tree,
        domains: Sequence[str] | None = None,
        *,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.tree = tree
        chosen = set(domains if domains is not None else HOST_DOMAINS)
        self.zones = [z for z in tree.zones if z.domain in chosen]
        self.domains = [d for d in HOST_DOMAINS if any(z.domain == d for z in self.zones)]
        self.clock = clock or SYSTEM_CLOCK
        self.poll_s = poll_s
        self._counts: list[_Count] = []
        self._loop: Loop | None = None

    @classmethod
    def open(
        cls,
        root: Path | str | None = None,
        domains: Sequence[str] | None = None,
        *,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
    ) -> PowercapMeter:
        return cls(scan(root), domains, clock=clock, poll_s=poll_s)

    def _read(self, zone: Zone, count: _Count, now: float, *, first: bool) -> None:
        if count.failed:
            return
        try:
            value = zone.read_uj()
        except (OSError, ValueError) as exc:
            count.failed = getattr(exc, "strerror", None) or str(exc)
            return
        if first:
            count.last_uj, count.total_uj, count.t_first = value, 0, now
        else:
            diff = value - count.last_uj
            if diff < 0:
                if zone.max_uj is None:
                    count.wrap_unknown = True
                    diff = 0
                else:
                    diff += zone.max_uj
            count.total_uj += diff
            count.last_uj = value
        count.t_last = now

    def begin(self) -> None:
        """Read every zone now (the span's first edge) and start the wrap poller."""
        self.end_poller()
        now = self.clock.now()
        self._counts = [_Count() for _ in self.zones]
        for zone, count in zip(self.zones, self._counts, strict=True):
            self._read(zone, count, now, first=True)
        if self.zones:
            self._loop = self.clock.loop(self._step, first_due=now + self.poll_s, name="llem-rapl")

    def _step(self, now: float) -> float:
        self.poll()
        return now + self.poll_s

    def poll(self) -> None:
        """Fold every zone's progress since its last read into its count."""
        now = self.clock.now()
        for zone, count in zip(self.zones, self._counts, strict=True):
            self._read(zone, count, now, first=False)

    def end_poller(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def end(self) -> list[ZoneReading]:
        """Read every zone now (the span's second edge): joules per zone since ``begin``."""
        self.end_poller()
        self.poll()
        out = []
        for zone, c in zip(self.zones, self._counts, strict=True):
            energy = None if c.failed else c.total_uj / 1e6
            out.append(ZoneReading(zone, energy, c.t_first, c.t_last, c.wrap_unknown, c.failed))
        return out

    def describe(self) -> str:
        labels = ", ".join(z.label for z in self.zones) or "no readable zone"
        return f"powercap ({self.tree.root}: {labels})"

    def close(self) -> None:
        self.end_poller()


def host_meter(
    domains: Sequence[str] | None, *, clock: Clock | None = None
) -> PowercapMeter | None:
    """The powercap meter ``energy.domains`` asks for (None: all); None when it asks for
    neither ``cpu`` nor ``dram``. An empty tree still gives a meter, so what is missing is said."""
    wanted = list(HOST_DOMAINS) if domains is None else [d for d in domains if d in HOST_DOMAINS]
    if not wanted:
        return None
    return PowercapMeter.open(None, wanted, clock=clock)
