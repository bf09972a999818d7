"""What a study run will do, decided before anything runs: points, order, runners, preflight.

Pure apart from the preflight checks. A ``Task`` carries its config hash and id,
computed once, so the loop never re-hashes or re-validates a config.
"""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llem_nb.backends.base import get_backend
from llem_nb.config.study import InvalidPoint, Point, StudyConfig, expand
from llem_nb.errors import ConfigError, LlemWarning
from llem_nb.runners.base import Runner, make_runner
from llem_nb.runners.resolve import resolve_runner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One experiment × cycle of a run; ``index`` is its position in this run."""

    index: int
    point: Point
    cycle: int
    config_hash: str
    experiment_id: str
    backend: str

    pair: dict[str, Any] = field(init=False, repr=False, compare=False)
    """The journal's key fields for this task (built once)."""

    def __post_init__(self) -> None:
        pair = {"config_hash": self.config_hash, "experiment_id": self.experiment_id}
        object.__setattr__(self, "pair", {**pair, "cycle": self.cycle})


def valid_points(config: StudyConfig) -> tuple[list[Point], list[InvalidPoint]]:
    """Expand once; warn about dropped points; ConfigError when nothing is left to run."""
    points, invalid = expand(config)
    for bad in invalid:
        log.info("study %s: dropped point %s: %s", config.name, bad.overrides, bad.reason)
        warnings.warn(f"dropped point {bad.overrides}: {bad.reason}", LlemWarning, stacklevel=5)
    if not points:
        reasons = "; ".join(b.reason for b in invalid) or "the study expands to no experiments"
        raise ConfigError(
            f"study {config.name!r} has no valid experiments: {reasons}",
            field="sweep",
            fix="fix the base fields or sweep values named above",
        )
    return points, invalid


def schedule(points: list[Point], config: StudyConfig) -> list[tuple[Point, int]]:
    """Order point × cycle pairs: sequential (A A B B), interleaved (A B A B), shuffled."""
    n, order = config.cycles.n, config.cycles.order
    if order == "sequential":
        return [(p, c) for p in points for c in range(n)]
    pairs: list[tuple[Point, int]] = []
    for c in range(n):
        batch = list(points)
        if order == "shuffled":
            random.Random(config.cycles.seed * 1_000_003 + c).shuffle(batch)
        pairs.extend((p, c) for p in batch)
    return pairs


def make_tasks(points: list[Point], config: StudyConfig) -> list[Task]:
    """The scheduled pairs as tasks, each point hashed once."""
    ids = {id(p): p.config.config_hash for p in points}
    return [
        Task(i, p, c, ids[id(p)], ids[id(p)][:12], p.config.backend)
        for i, (p, c) in enumerate(schedule(points, config))
    ]


def resolve_runners(
    backends: list[str], runner: Any, study_runners: Mapping[str, str]
) -> dict[str, Runner]:
    """One Runner per backend, each stamped with the layer that chose it."""
    if isinstance(runner, Runner):
        return {b: runner for b in backends}
    if runner is not None and not isinstance(runner, (str, Mapping)) and hasattr(runner, "value"):
        runner = runner.value
    if runner is not None and not isinstance(runner, (str, Mapping)):
        raise ConfigError(
            f"runner={runner!r} is not a runner value, a Runner, or a {{backend: value}} mapping",
            field="runner",
        )
    from llem_nb.runners.docker.probe import isolate_backends

    specs = {b: resolve_runner(b, argument=runner, study_runners=study_runners) for b in backends}
    isolated = isolate_backends(specs)
    for backend, spec in isolated.items():
        if spec != specs[backend]:
            log.info("runner for %s: %s (isolated: several backends)", backend, spec.value)
    return {b: make_runner(s.value, source=s.source) for b, s in isolated.items()}


def preflight(points: list[Point], runners: Mapping[str, Runner]) -> None:
    """Every check that can fail before anything is written."""
    seen: set[tuple[str, str, str]] = set()
    for point in points:
        c = point.config
        key = (c.backend, c.model, str(c.gpus))
        if key in seen:
            continue
        seen.add(key)
        runner = runners[c.backend]
        if not runner.checks_backend:
            get_backend(c.backend).preflight(c)
        runner.preflight(c)
