"""Before the window: warm the engine up, and say how it went.

Warm-up runs a fixed number of batches, or (``warmup.mode="cv"``) keeps going until
the coefficient of variation of the last ``warmup.window`` batch latencies drops under
``warmup.cv_threshold`` (never past ``warmup.max_runs``). A model kept loaded from an
earlier experiment is already warm: it gets a re-warm instead (one batch at the new
point's settings, at most ``warmup.rewarm_tokens`` new tokens), so a changed batch size or
decoding setting is not measured cold; none when it already ran a window at exactly these
settings (a later cycle of the same point). Each returns a record of what happened, stored on
the result; nothing is decided silently.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llem_nb.config.sections import WarmupConfig


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample standard deviation ÷ mean; None for fewer than two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else None


@dataclass
class WarmupRecord:
    """Warm-up runs done, their latencies, the final CV and (cv mode) whether it converged."""

    mode: str
    runs: int
    latencies_s: list[float] = field(default_factory=list)
    cv: float | None = None
    converged: bool | None = None
    rewarm: bool = False
    rewarm_tokens: int | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def warm_up(run_once: Callable[[], float], config: WarmupConfig) -> WarmupRecord:
    """Call ``run_once`` (it returns one run's latency in seconds) as ``config`` says."""
    latencies: list[float] = []
    if config.mode == "fixed":
        for _ in range(config.runs):
            latencies.append(run_once())
        cv = coefficient_of_variation(latencies[-config.window :])
        return WarmupRecord("fixed", len(latencies), latencies, cv)
    minimum = max(config.runs, config.window)
    cv = None
    while len(latencies) < config.max_runs:
        latencies.append(run_once())
        if len(latencies) >= minimum:
            cv = coefficient_of_variation(latencies[-config.window :])
            if cv is not None and cv < config.cv_threshold:
                return WarmupRecord("cv", len(latencies), latencies, cv, True)
    return WarmupRecord("cv", len(latencies), latencies, cv, False)


def re_warm(
    run_once: Callable[[], float], config: WarmupConfig, *, already_ran: bool = False
) -> WarmupRecord:
    """The re-warm of a reused model: one ``run_once`` (a short batch); none when warm-up is
    off, or when the model ``already_ran`` a window at exactly these settings."""
    note = None
    if config.mode == "fixed" and config.runs == 0:
        note = "warm-up is off"
    elif already_ran:
        note = "the kept model already ran a window at these settings"
    latencies = [] if note else [run_once()]
    return WarmupRecord(
        "fixed",
        len(latencies),
        latencies,
        rewarm=True,
        rewarm_tokens=config.rewarm_tokens,
        note=note,
    )
