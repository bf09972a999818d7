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

from llem_nb.backends.base import get_backend, load_identity
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.study import InvalidPoint, Point, StudyConfig, expand
from llem_nb.errors import ConfigError, LlemWarning
from llem_nb.results.labels import point_label
from llem_nb.run.paths import check_datasets
from llem_nb.runners.base import Runner, make_runner
from llem_nb.runners.docker.probe import isolate_backends
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

    @property
    def label(self) -> str:
        """The experiment's readable name (``batch_size=8``), as ``load_results`` labels it."""
        return point_label(self.point.overrides, model=self.point.config.model)


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


def load_groups(points: list[Point]) -> list[list[Point]]:
    """Points grouped by load identity, groups in order of first appearance, points in
    order within each; a point that shares its load with none is a group of its own."""
    groups: dict[Any, list[Point]] = {}
    for point in points:
        identity = load_identity(point.config) or ("config", point.config.config_hash)
        groups.setdefault(identity, []).append(point)
    return list(groups.values())


def schedule(points: list[Point], config: StudyConfig) -> list[tuple[Point, int]]:
    """Order point × cycle pairs: sequential (A A B B), interleaved (A B A B), shuffled.

    With ``reuse="auto"`` the order lets loaded models be reused, within each order's rule:
    sequential runs every point's cycles back to back and points that load the same model
    one after another; interleaved still runs one round over every point per cycle, each
    round grouped by load and starting with the model the previous round ended on (the
    groups' order alternates, A B | B A, which also balances slow drift across them);
    shuffled stays exactly the seeded shuffle.
    """
    n, order, reuse = config.cycles.n, config.cycles.order, config.reuse == "auto"
    groups = load_groups(points) if reuse else [[p] for p in points]
    if order == "sequential":
        return [(p, c) for group in groups for p in group for c in range(n)]
    pairs: list[tuple[Point, int]] = []
    for c in range(n):
        if order == "shuffled":
            batch = list(points)
            random.Random(config.cycles.seed * 1_000_003 + c).shuffle(batch)
        else:
            rounds = groups[::-1] if reuse and c % 2 else groups
            batch = [p for group in rounds for p in group]
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
    backends: list[str],
    runner: Any,
    study_runners: Mapping[str, str],
    points: list[Point] | None = None,
) -> dict[str, Runner]:
    """One Runner per backend, each stamped with the layer that chose it (``points``: what
    the multi-backend rule needs to know, e.g. which backends' experiments ask for GPUs)."""
    if isinstance(runner, Runner):
        return {b: runner for b in backends}
    if runner is not None and not isinstance(runner, (str, Mapping)) and hasattr(runner, "value"):
        runner = runner.value
    if runner is not None and not isinstance(runner, (str, Mapping)):
        raise ConfigError(
            f"runner={runner!r} is not a runner value, a Runner, or a {{backend: value}} mapping",
            field="runner",
        )

    specs = {b: resolve_runner(b, argument=runner, study_runners=study_runners) for b in backends}
    gpus: dict[str, list[Any]] = {}
    for point in points or []:
        gpus.setdefault(point.config.backend, []).append(point.config.gpus)
    isolated = isolate_backends(specs, gpus=gpus or None)
    for backend, spec in isolated.items():
        if spec != specs[backend]:
            log.info("runner for %s: %s (isolated: several backends)", backend, spec.value)
    return {b: make_runner(s.value, source=s.source) for b, s in isolated.items()}


def plan_experiment(config: ExperimentConfig, runner: Any) -> tuple[Task, Runner]:
    """One experiment as a one-point study's plan: its task, and its runner resolved and
    preflighted exactly as ``Study.run`` would (``runner``: any value ``Study.run`` takes)."""
    point = Point(config=config, overrides={})
    check_datasets([point])
    runners = resolve_runners([config.backend], runner, {}, [point])
    preflight([point], runners)
    task = Task(0, point, 0, config.config_hash, config.experiment_id, config.backend)
    return task, runners[config.backend]


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
