"""EstimateMeter: a CPU energy *estimate* for machines with no readable energy source.

Model::

    energy_j = cpu_seconds × cpu_w_per_core

where ``cpu_seconds`` is the CPU time (user + system) used during the window by this
process, its waited-for children (``os.times()``) and its live descendants (``/proc``:
engines such as vLLM compute in worker processes that outlive the window), and
``cpu_w_per_core`` is the power of one fully busy core (``energy.cpu_w_per_core``,
default 10 W). So one core busy for 1 s is 10 J; four cores busy for 1 s is 40 J; a
process that sleeps costs 0 J.
It ignores idle and uncore power, DRAM, frequency scaling, other processes and any
GPU. It is a rough, comparable-on-one-machine number, never a measurement: every
reading says so in a warning and carries the flag ``energy_estimated``.
"""

from __future__ import annotations

import os

from llem_nb.energy.base import DeviceReading, EnergyMeter, EnergyReading


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def descendant_cpu_s(root: int | None = None) -> dict[int, float]:
    """CPU seconds of each live descendant of ``root`` (default: this process); {} without /proc."""
    root = os.getpid() if root is None else root
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    try:
        entries = [e for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return {}
    for entry in entries:
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                text = fh.read().decode(errors="replace")
        except OSError:
            continue
        rest = text[text.rfind(")") + 2 :].split()
        if len(rest) < 15:
            continue
        pid = int(entry.name)
        parents[pid] = int(rest[1])
        cpu[pid] = sum(int(v) for v in rest[11:15]) / tick
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, float] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        out[pid] = cpu[pid]
        stack.extend(children.get(pid, []))
    return out


def window_cpu_s(
    start: tuple[float, dict[int, float]], stop: tuple[float, dict[int, float]]
) -> float:
    """CPU seconds spent between two snapshots of (own + waited, live descendants).

    A descendant that ended in between was most likely waited for, so its whole
    lifetime moved into the children totals: its pre-window part is taken back out.
    """
    own0, tree0 = start
    own1, tree1 = stop
    total = own1 - own0
    for pid, seconds in tree1.items():
        total += seconds - tree0.get(pid, 0.0)
    for pid, seconds in tree0.items():
        if pid not in tree1:
            total -= seconds
    return max(total, 0.0)


def snapshot() -> tuple[float, dict[int, float]]:
    return cpu_seconds(), descendant_cpu_s()


class EstimateMeter(EnergyMeter):
    """CPU time × watts per busy core; see the module docstring for the model."""

    source = "estimate"

    def __init__(self, cpu_w_per_core: float = 10.0, *, note: str | None = None) -> None:
        super().__init__()
        if cpu_w_per_core <= 0:
            raise ValueError("cpu_w_per_core must be > 0")
        self.cpu_w_per_core = cpu_w_per_core
        self.note = note
        self._cpu0: tuple[float, dict[int, float]] = (0.0, {})
        self._idle: dict[str, float] = {}

    @property
    def model(self) -> str:
        watts = f"{self.cpu_w_per_core:g} W"
        return f"CPU time of this process and its descendants × {watts} per busy core"

    def _start(self) -> None:
        self._cpu0 = snapshot()

    def _stop(self, window_s: float) -> EnergyReading:
        busy_s = window_cpu_s(self._cpu0, snapshot())
        warnings = [f"energy is an estimate, not a measurement: {self.model}"]
        if self.note:
            warnings.append(self.note)
        device = DeviceReading(
            label="cpu",
            energy_j=busy_s * self.cpu_w_per_core,
            method="estimate",
            name="CPU (estimated)",
            idle_power_w=self._idle.get("cpu"),
        )
        return EnergyReading(
            source=self.source,
            window_s=window_s,
            devices=[device],
            warnings=warnings,
            flags=["energy_estimated"],
        )

    def _idle_power_w(self, seconds: float) -> dict[str, float]:
        """The model's idle power: this process's background CPU use over ``seconds``, in W."""
        cpu0, t0 = snapshot(), self.clock.now()
        self.clock.sleep(seconds)
        busy_s = window_cpu_s(cpu0, snapshot())
        self._idle = {"cpu": busy_s * self.cpu_w_per_core / (self.clock.now() - t0)}
        return dict(self._idle)

    def describe(self) -> str:
        return f"estimate ({self.model})"
