"""Quality flags: every reason a row's numbers deserve doubt, as short stable names.

A row is ``quality_ok`` when it succeeded and carries no flag. Each flag comes with a
warning sentence that gives the numbers behind it. Thresholds are module constants so
a reader of a paper can quote them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from llem_nb.energy.base import EnergyReading
from llem_nb.measure.boundary import BOUNDARY_FLAGS

MIN_WINDOW_S = 5.0
MAX_COUNTER_POWER_DISAGREEMENT = 0.05
MAX_TEMPERATURE_DRIFT_C = 10.0
MIN_POWER_SAMPLES = 10
THROTTLE_IDLE = 0x1
THROTTLE_NAMES: dict[int, str] = {
    0x2: "applications clocks setting",
    0x4: "software power cap",
    0x8: "hardware slowdown",
    0x10: "sync boost",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "hardware power brake",
    0x100: "display clock setting",
}

THROTTLE_CAUSES: dict[str, tuple[int, str]] = {
    "throttled_power_cap": (0x4 | 0x80, "clocks held down by the power cap or power brake"),
    "throttled_thermal": (0x20 | 0x40, "clocks held down by temperature (software or hardware)"),
    "throttled_hw_slowdown": (0x8, "hardware slowdown (power supply or thermal protection)"),
}

FLAGS: dict[str, str] = {
    "short_window": "measured window shorter than the configured measurement.min_window_s "
    f"(max_repeats reached first), or than {MIN_WINDOW_S:g} s with the minimum off",
    "counter_power_disagree": "energy counter and power integral differ by more than "
    f"{MAX_COUNTER_POWER_DISAGREEMENT:.0%}",
    "net_energy_clamped": "idle energy exceeded gross energy beyond noise; total net clamped at 0",
    "temperature_drift": f"GPU temperature moved more than {MAX_TEMPERATURE_DRIFT_C:g} °C",
    "other_processes": "other processes were using a measured GPU",
    "throttled": "clocks were throttled for a reason other than idling",
    "few_power_samples": f"fewer than {MIN_POWER_SAMPLES} power samples in the window",
    "energy_estimated": "energy is a model estimate, not a measurement",
    "warmup_not_converged": "warm-up latency CV stayed above the threshold",
    "cooldown_timeout": "the GPU did not cool down before the window",
    **{flag: text for flag, (_, text) in THROTTLE_CAUSES.items()},
    "phase_unresolved": "prefill phases shorter than the meter resolves; the split is approximate",
    "counter_unsupported": "the GPU has no energy counter; energy is the polled-power integral",
    "counter_stale": "the energy counter did not update around a window edge; power used",
    "counter_coarse": "irregular counter updates and fewer than 100 of them in the window",
    "counter_reset": "the energy counter went backwards; power used",
    "counter_read_gaps": "some energy-counter reads failed (energy still bracketed)",
    "power_poll_gaps": "some power reads failed; the power curve bridges them",
    "gpu_read_error": "a measured GPU stopped answering; its energy is unknown",
    "mig_whole_gpu": "a MIG instance: NVML energy covers the whole GPU",
    "power_limit_changed": "the GPU power limit changed during the window",
    "ecc_errors": "uncorrected ECC errors during the window",
    "xid_error": "the driver reported a critical XID error during the window",
    "no_energy_source": "no energy source: nothing was measured",
    "compile_in_window": "torch.compile compiled graphs inside the measured window",
    **BOUNDARY_FLAGS,
    "requests_failed": "serving: some requests failed (the first error is in warnings)",
    "client_lag": "serving: the client's send-lag p99 exceeded 5 ms; the offered load was lower",
    "usage_mismatch": "serving: the server's token usage disagrees with our counts",
    "no_steady_state": "serving: no steady state by the rule; energy covers the whole run",
    "steady_energy_unresolved": "serving: the meter cannot cut the steady state from the run",
}
"""Every quality flag with what it means; meters and the phase split raise some of them."""


@dataclass
class Assessment:
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, flag: str, warning: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
        self.warnings.append(warning)


def throttle_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_NAMES.items() if mask & bit] or [hex(mask)]


def _temperature_drift(reading: EnergyReading, labels: list[str], out: Assessment) -> None:
    for k, label in enumerate(labels):
        temps_c = [float(t) for s in reading.states if (t := s.temperature_c[k]) is not None]
        if temps_c and max(temps_c) - min(temps_c) > MAX_TEMPERATURE_DRIFT_C:
            out.add(
                "temperature_drift",
                f"{label} temperature ranged {min(temps_c):.0f}–{max(temps_c):.0f} °C "
                "during the window",
            )


def _throttling(reading: EnergyReading, labels: list[str], out: Assessment) -> None:
    """``throttled`` for any reason but idling, plus one flag per cause users act on."""
    for k, label in enumerate(labels):
        mask = 0
        for state in reading.states:
            mask |= state.throttle_reasons[k] or 0
        if mask & ~THROTTLE_IDLE:
            names = ", ".join(throttle_names(mask & ~THROTTLE_IDLE))
            out.add("throttled", f"{label} clocks were throttled during the window: {names}")
        for flag, (bits, text) in THROTTLE_CAUSES.items():
            if mask & bits:
                out.add(flag, f"{label}: {text}")


def _short_window(window_s: float, min_window_s: float | None, out: Assessment) -> None:
    """Below the minimum that applied: the configured one (only the ``max_repeats`` cap can
    stop a window short of it), else ``MIN_WINDOW_S``."""
    if min_window_s:
        if window_s < min_window_s:
            out.add(
                "short_window",
                f"window {window_s:.2f} s < measurement.min_window_s {min_window_s:g} s: "
                "measurement.max_repeats was reached first; raise it or use more prompts",
            )
    elif window_s < MIN_WINDOW_S:
        out.add("short_window", f"window {window_s:.2f} s < {MIN_WINDOW_S:g} s: edges dominate")


def assess(
    reading: EnergyReading,
    *,
    window_s: float,
    min_window_s: float | None = None,
    net_clamped: Iterable[str] = (),
    other_processes: Mapping[str, list[int]] | None = None,
    warmup_converged: bool | None = None,
    cooldown_reached: bool | None = None,
) -> Assessment:
    """The meter's flags and warnings, plus every flag raised here, with its warning.

    ``min_window_s``: the minimum window the run aimed for (None or 0: none, the
    ``MIN_WINDOW_S`` rule applies instead)."""
    out = Assessment(list(dict.fromkeys(reading.flags)), list(reading.warnings))
    labels = [d.label for d in reading.devices]
    _short_window(window_s, min_window_s, out)
    for device in reading.devices:
        ratio = device.counter_vs_power_ratio
        if ratio is not None and abs(ratio - 1) > MAX_COUNTER_POWER_DISAGREEMENT:
            out.add(
                "counter_power_disagree",
                f"{device.label}: energy counter / power integral = {ratio:.3f} "
                f"(more than {MAX_COUNTER_POWER_DISAGREEMENT:.0%} apart)",
            )
    for label in net_clamped:
        out.add("net_energy_clamped", f"{label}: idle power × window exceeded gross energy")
    _temperature_drift(reading, labels, out)
    for label, pids in (other_processes or {}).items():
        out.add("other_processes", f"{label} was also used by PID(s) {', '.join(map(str, pids))}")
    _throttling(reading, labels, out)
    if reading.source == "nvml":
        few = [d for d in reading.devices if d.samples < MIN_POWER_SAMPLES]
        for device in few:
            out.add(
                "few_power_samples",
                f"{device.label}: {device.samples} power samples (< {MIN_POWER_SAMPLES}); "
                "the cross-check is weak",
            )
    if reading.source == "estimate" and "energy_estimated" not in out.flags:
        out.add("energy_estimated", "energy is a CPU-time model estimate, not a measurement")
    if warmup_converged is False:
        out.add("warmup_not_converged", FLAGS["warmup_not_converged"])
    if cooldown_reached is False:
        out.add("cooldown_timeout", FLAGS["cooldown_timeout"])
    return out
