"""The energy boundary: GPU, CPU package and DRAM over the same window, gross, idle and net each.

The GPU domain is what the GPU meter read (``energy_gross_j`` keeps that meaning, so old
results and peers' stay comparable); CPU and DRAM come from powercap (RAPL) zones read at
the window's edges and over the same idle span as the GPU baseline. Each domain's net is
its gross minus its own idle power times the span its counts cover, signed per zone,
summed, and clamped once on the domain (flagged). ``energy_boundary_j`` sums the measured
domains; ``energy_facility_j`` multiplies that by ``carbon.pue``: a model, said so in
``energy_facility_method``. An unreadable counter is never a zero: it is left out of the
boundary with a warning naming the fix, and flagged (``rapl_unreadable``) when
``energy.domains`` asked for its domain by name; by default (every domain the host can
read) the GPU row stays unflagged. A named domain not measured at all is flagged too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.powercap import HOST_DOMAINS, PowercapMeter, ZoneReading, read_fix
from llem_nb.results.schema import DomainEnergy, ExperimentResult

DOMAINS = ("gpu", *HOST_DOMAINS)
BOUNDARY_FLAGS: dict[str, str] = {
    "rapl_unreadable": "a RAPL counter of a domain named in energy.domains (cpu, dram) is not "
    "readable by this process; run as root or make energy_uj readable",
    "domain_unmeasured": "an energy domain in energy.domains could not be measured here",
    "rapl_wrap_unknown": "a RAPL counter wrapped and its range is unknown; that energy is left out",
}
"""Flags this module raises (listed with the others in ``llem_nb.measure.quality.FLAGS``)."""


def idle_watts(zones: Sequence[ZoneReading]) -> dict[str, float]:
    """Mean watts per zone label over an idle span (zones that could not be read left out)."""
    return {
        z.zone.label: z.energy_j / z.span_s
        for z in zones
        if z.energy_j is not None and z.span_s > 0 and not z.wrap_unknown
    }


def _gpu_domain(result: ExperimentResult, window_s: float) -> DomainEnergy | None:
    gpus = [d for d in result.energy_devices if d.label.startswith("gpu")]
    if result.energy_source != "nvml" or not gpus or any(d.energy_j is None for d in gpus):
        return None
    gross = float(sum(d.energy_j or 0.0 for d in gpus))
    idle = [d.idle_power_w for d in gpus]
    idle_w = float(sum(w or 0.0 for w in idle)) if all(w is not None for w in idle) else None
    zones = [
        {
            "label": d.label,
            "energy_j": d.energy_j,
            "idle_power_w": d.idle_power_w,
            "span_s": window_s,
        }
        for d in gpus
    ]
    net = None if idle_w is None else gross - idle_w * window_s
    return DomainEnergy(
        domain="gpu", energy_j=gross, idle_power_w=idle_w, energy_net_j=net, zones=zones,
        method=f"nvml ({len(gpus)} GPU)",
    )  # fmt: skip


def _host_domain(
    domain: str, zones: Sequence[ZoneReading], idle: Mapping[str, float]
) -> DomainEnergy | None:
    mine = [z for z in zones if z.zone.domain == domain]
    if not mine or any(z.energy_j is None or z.wrap_unknown for z in mine):
        return None
    gross = float(sum(z.energy_j or 0.0 for z in mine))
    idle_w: float | None = None
    net: float | None = None
    if all(z.zone.label in idle for z in mine):
        idle_w = float(sum(idle[z.zone.label] for z in mine))
        net = gross - sum(idle[z.zone.label] * z.span_s for z in mine)
    rows = [
        {"label": z.zone.label, "energy_j": z.energy_j, "idle_power_w": idle.get(z.zone.label),
         "span_s": z.span_s}
        for z in mine
    ]  # fmt: skip
    platform = any(z.zone.platform for z in mine)
    return DomainEnergy(
        domain=domain, energy_j=gross, idle_power_w=idle_w, energy_net_j=net, zones=rows,
        method="rapl psys (whole platform)" if platform else "rapl",
    )  # fmt: skip


def _problems(
    wanted: Sequence[str], found: Mapping[str, DomainEnergy], host: PowercapMeter | None,
    zones: Sequence[ZoneReading], explicit: bool,
) -> list[tuple[str, str]]:  # fmt: skip
    out: list[tuple[str, str]] = []
    if host is not None:
        fix = read_fix(host.tree.root)
        flag = "rapl_unreadable" if explicit else ""
        for label, why in host.tree.unreadable.items():
            if label.split(":")[0] in wanted:
                out.append((flag, f"{label} energy_uj unreadable ({why}), left out of the "
                            f"boundary (not counted as zero); to measure it: {fix}"))  # fmt: skip
    for z in zones:
        if z.failed is not None and z.zone.domain in wanted:
            out.append(
                ("rapl_unreadable", f"{z.zone.label} read failed in the window ({z.failed})")
            )
        if z.wrap_unknown:
            out.append(
                (
                    "rapl_wrap_unknown",
                    f"{z.zone.label} wrapped and max_energy_range_uj is "
                    "unreadable; its domain is left out",
                )
            )
    if explicit:
        for domain in wanted:
            if domain not in found and not any(w.startswith(f"{domain}:") for _, w in out):
                where = "no NVML GPU meter" if domain == "gpu" else "no RAPL zone for it"
                out.append(("domain_unmeasured", f"energy domain {domain!r} not measured: {where}"))
    return out


def fill_boundary(
    result: ExperimentResult,
    config: ExperimentConfig,
    *,
    window_s: float,
    host: PowercapMeter | None = None,
    zones: Sequence[ZoneReading] = (),
    host_idle: Mapping[str, float] | None = None,
) -> None:
    """Per-domain gross, idle and net, the boundary and its facility model, on ``result``;
    flags and warnings for domains that could not be measured are added to it too."""
    explicit = config.energy.domains is not None
    wanted = list(config.energy.domains) if explicit else list(DOMAINS)  # type: ignore[arg-type]
    found: dict[str, DomainEnergy] = {}
    gpu = _gpu_domain(result, window_s) if "gpu" in wanted else None
    if gpu is not None:
        found["gpu"] = gpu
    for domain in HOST_DOMAINS:
        entry = _host_domain(domain, zones, host_idle or {}) if domain in wanted else None
        if entry is not None:
            found[domain] = entry
    for entry in found.values():
        if entry.energy_net_j is not None and entry.energy_net_j < 0:
            entry.energy_net_j = 0.0
            entry.net_clamped = True
            if entry.domain == "gpu":  # the GPU meter's own net already raised the flag
                continue
            _flag(result, "net_energy_clamped", f"{entry.domain}: idle energy exceeded gross; "
                  "its net clamped at 0 once, on the domain total")  # fmt: skip
    result.energy_domains = [found[d] for d in DOMAINS if d in found]
    for domain in DOMAINS:
        entry = found.get(domain)
        setattr(result, f"energy_{domain}_j", entry.energy_j if entry else None)
        setattr(result, f"energy_{domain}_net_j", entry.energy_net_j if entry else None)
    result.energy_boundary = "+".join(d for d in DOMAINS if d in found) or None
    if found:
        result.energy_boundary_j = float(sum(e.energy_j or 0.0 for e in found.values()))
        nets = [e.energy_net_j for e in found.values()]
        if all(n is not None for n in nets):
            result.energy_boundary_net_j = float(sum(n or 0.0 for n in nets))
        pue = config.carbon.pue
        result.energy_facility_j = result.energy_boundary_j * pue
        result.energy_facility_method = (
            f"modelled: ({result.energy_boundary}) gross energy × PUE {pue:g} (carbon.pue), "
            "not measured"
        )
    for flag, warning in _problems(wanted, found, host, zones, explicit):
        if flag:
            _flag(result, flag, warning)
        else:
            result.warnings.append(warning)
    if host is not None and any(d in found for d in HOST_DOMAINS):
        result.warnings.extend(host.tree.notes)


def _flag(result: ExperimentResult, flag: str, warning: str) -> None:
    if flag not in result.quality_flags:
        result.quality_flags.append(flag)
    result.warnings.append(warning)
