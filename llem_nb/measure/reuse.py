"""What a study keeps between its experiments in one process: the loaded model and a baseline.

A ``ModelKeeper`` holds at most one loaded backend between ``Harness.run`` calls. The next
experiment whose ``Backend.load_key`` equals the kept one's gets that backend back, switched
to its own settings by ``Backend.reconfigure``: no load (``load_s`` 0, ``model_reused``), a
short re-warm instead of a full warm-up (none when the kept model already ran a window at
exactly these settings). Any other key frees the kept model before the next
one loads; an experiment that fails drops it (its state is unknown).

The keeper also holds the last idle baseline measured with that model loaded. A later window
reuses it (``baseline_reused``, ``baseline_age_s``) only while all of these hold: it is
younger than ``baseline.max_age_s``, it was taken for as many seconds on the very same
devices, every device's temperature is within ``BASELINE_DRIFT_C`` of what it was then, and
power limits, clock limits and clock-limiting (throttle) reasons are unchanged. Otherwise
the baseline is measured again and ``baseline_note`` says why. The first window of each
loaded model always measures its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llem_nb.backends.base import Backend, get_backend, load_identity
from llem_nb.config.experiment import ExperimentConfig

BASELINE_DRIFT_C = 3.0
"""A device warmer or cooler than this since the kept baseline: its idle power is measured
again (idle power rises with temperature through leakage)."""

_LIMITS = ("power_limit_w", "enforced_power_limit_w", "max_sm_clock_mhz", "max_memory_clock_mhz")
_CLOCK_REASONS = 0x2 | 0x4 | 0x8 | 0x20 | 0x40 | 0x80
"""Throttle bits that hold clocks down: application clocks, power cap, hardware slowdown,
thermal slowdowns, power brake (``measure.quality.THROTTLE_NAMES``)."""

BackendFactory = Callable[[ExperimentConfig], Backend]


def _new_backend(config: ExperimentConfig) -> Backend:
    return get_backend(config.backend)(config)


@dataclass(frozen=True)
class KeptBaseline:
    """An idle baseline as measured: watts per device label, when, how long, on what."""

    idle_w: dict[str, float]
    seconds: float
    measured_at: float
    facts: tuple[dict[str, Any], ...]
    source: str


@dataclass(frozen=True)
class BaselineChoice:
    """The baseline a window uses: kept (``reused``) or to be measured, and why."""

    reused: bool
    age_s: float
    note: str | None
    idle_w: dict[str, float]


def _device_ids(facts: Sequence[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    return [(f.get("index"), f.get("uuid")) for f in facts]


def _label(fact: Mapping[str, Any]) -> str:
    return f"gpu{fact.get('index')}"


def _drift(then: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]]) -> str | None:
    """Why devices no longer look as they did when the baseline was measured; None: they do."""
    for old, new in zip(then, now, strict=True):
        t0, t1 = old.get("temperature_c"), new.get("temperature_c")
        if t0 is not None and t1 is not None and abs(float(t1) - float(t0)) > BASELINE_DRIFT_C:
            return f"{_label(new)} temperature moved from {t0} to {t1} °C since the last baseline"
        for name in _LIMITS:
            if old.get(name) != new.get(name):
                what = name.removesuffix("_w").removesuffix("_mhz").replace("_", " ")
                return f"{_label(new)} {what} changed ({old.get(name)} → {new.get(name)})"
        r0, r1 = old.get("throttle_reasons"), new.get("throttle_reasons")
        if (r0 or 0) & _CLOCK_REASONS != (r1 or 0) & _CLOCK_REASONS:
            return f"{_label(new)} clock-limiting reasons changed ({r0} → {r1})"
    return None


class ModelKeeper:
    """At most one loaded model kept between experiments, and its latest idle baseline.

    ``make_backend`` builds a backend for a config (default: the registered class); tests
    pass one that builds a simulated backend.
    """

    def __init__(self, make_backend: BackendFactory | None = None) -> None:
        self._make = make_backend or _new_backend
        self.backend: Backend | None = None
        self.key: tuple[str, str] | None = None
        self.idle_c: dict[str, float] = {}
        self.baseline: KeptBaseline | None = None
        self.loads = 0
        self._ran: set[str] = set()

    def take(self, config: ExperimentConfig) -> tuple[Backend, bool]:
        """The kept backend switched to ``config`` (True), or a new, unloaded one (False)
        after freeing whatever was kept."""
        key = load_identity(config)
        kept = self.backend
        if kept is not None and key is not None and key == self.key:
            try:
                kept.reconfigure(config)
            except BaseException:
                self.release()
                raise
            return kept, True
        self.release()
        return self._make(config), False

    def keep(self, backend: Backend, config: ExperimentConfig, idle_c: dict[str, float]) -> None:
        """Hold ``backend``, just loaded for ``config``; ``idle_c``: temperatures before it."""
        self.loads += 1
        key = load_identity(config)
        if key is None:
            return
        self.backend, self.key, self.idle_c = backend, key, dict(idle_c)

    def owns(self, backend: Backend) -> bool:
        return backend is self.backend

    def ran(self, config: ExperimentConfig) -> bool:
        """Whether the kept model already ran a window at exactly ``config``'s settings."""
        return config.config_hash in self._ran

    def mark_ran(self, backend: Backend, config: ExperimentConfig) -> None:
        if backend is self.backend:
            self._ran.add(config.config_hash)

    def release(self) -> None:
        """Unload the kept model (freeing its memory) and forget its baseline."""
        backend, self.backend, self.key = self.backend, None, None
        self.baseline, self.idle_c = None, {}
        self._ran = set()
        if backend is not None:
            backend.unload()

    # ------------------------------------------------------------------ baseline

    def choose_baseline(
        self,
        config: ExperimentConfig,
        facts: Sequence[Mapping[str, Any]],
        source: str,
        now: float,
        *,
        first: bool,
    ) -> BaselineChoice:
        """Reuse the kept baseline, or say why this window measures its own."""
        kept = self.baseline
        note: str | None = None
        if first:
            note = "first window with this model loaded"
        elif config.baseline.max_age_s == 0:
            note = "baseline.max_age_s is 0"
        elif kept is None:
            note = "no baseline kept with this model"
        elif kept.source != source or _device_ids(kept.facts) != _device_ids(facts):
            note = "the kept baseline was measured on other devices"
        elif kept.seconds != config.baseline.seconds:
            note = f"baseline.seconds changed ({kept.seconds} → {config.baseline.seconds})"
        elif now - kept.measured_at >= config.baseline.max_age_s:
            note = (
                f"the kept baseline is {now - kept.measured_at:.0f} s old "
                f"(baseline.max_age_s={config.baseline.max_age_s:g})"
            )
        else:
            note = _drift(kept.facts, facts)
        if note is None and kept is not None:
            return BaselineChoice(True, now - kept.measured_at, None, dict(kept.idle_w))
        return BaselineChoice(False, 0.0, note, {})

    def keep_baseline(
        self,
        idle_w: Mapping[str, float],
        config: ExperimentConfig,
        facts: Sequence[Mapping[str, Any]],
        source: str,
        measured_at: float,
    ) -> None:
        """Remember a baseline just measured with the kept model loaded."""
        if self.backend is None or not idle_w:
            return
        self.baseline = KeptBaseline(
            dict(idle_w), config.baseline.seconds, measured_at, tuple(map(dict, facts)), source
        )
