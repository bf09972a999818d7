"""Running a study: schedule point × cycle, dispatch to runners, store every result.

A failed experiment never stops the study: it becomes a ``status="failed"`` row
with its error. A KeyboardInterrupt (the kernel's stop button) ends the loop
cleanly and returns the partial ``StudyResult`` with ``interrupted=True``; the
results already written stay on disk.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem_nb.backends.base import get_backend
from llem_nb.config import InvalidPoint, Point, StudyConfig
from llem_nb.errors import ConfigError, ResultError
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
from llem_nb.runners.base import Runner, make_runner
from llem_nb.runners.resolve import RunnerSpec, resolve_runner

if TYPE_CHECKING:
    import pandas as pd

    from llem_nb.study import Study

RunnerArg = Any
"""A runner value (``"local"``), a Runner, a {backend: value} mapping, or a picker widget."""


@dataclass
class ProgressEvent:
    """What the loop tells progress views: one event per state change."""

    kind: str
    index: int
    total: int
    experiment_id: str = ""
    cycle: int = 0
    backend: str = ""
    status: str = ""
    error_category: str | None = None
    result: ExperimentResult | None = None
    elapsed_s: float = 0.0


Callback = Callable[[ProgressEvent], None]


@dataclass
class StudyResult:
    """What a study run produced: the results dir, the results, and a DataFrame of them."""

    name: str
    dir: Path
    results: list[ExperimentResult] = field(default_factory=list)
    invalid: list[InvalidPoint] = field(default_factory=list)
    runners: dict[str, RunnerSpec] = field(default_factory=dict)
    interrupted: bool = False
    _df: Any = None

    @property
    def df(self) -> pd.DataFrame:
        if self._df is None:
            from llem_nb.results.frame import load_results

            self._df = load_results(self.dir)
        return self._df

    @property
    def failed(self) -> list[ExperimentResult]:
        return [r for r in self.results if r.status == "failed"]

    def _repr_html_(self) -> str:
        from llem_nb._display import study_result_html

        return study_result_html(self)


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


def resolve_runners(
    backends: list[str], runner: RunnerArg, study_runners: Mapping[str, str]
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
    out: dict[str, Runner] = {}
    for backend in backends:
        spec = resolve_runner(backend, argument=runner, study_runners=study_runners)
        out[backend] = make_runner(spec.value, source=spec.source)
    return out


def _new_study_dir(results_dir: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        candidate = results_dir / (f"{name}_{stamp}" + (f"-{i}" if i else ""))
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise ResultError(f"could not create a fresh study dir under {results_dir}")


def preflight(points: list[Point], runners: Mapping[str, Runner]) -> None:
    """Every check that can fail before anything is written."""
    seen: set[tuple[str, str, str]] = set()
    for point in points:
        c = point.config
        key = (c.backend, c.model, str(c.gpus))
        if key in seen:
            continue
        seen.add(key)
        backend_cls = get_backend(c.backend)
        if runners[c.backend].name in ("local", "subprocess"):
            backend_cls.preflight(c)


def run_study(
    study: Study,
    *,
    runner: RunnerArg = None,
    results_dir: str | Path = "results",
    progress: bool = True,
    callbacks: list[Callback] | None = None,
) -> StudyResult:
    points, invalid = study.points, study.invalid
    for bad in invalid:
        warnings.warn(f"dropped point {bad.overrides}: {bad.reason}", stacklevel=3)
    if not points:
        reasons = "; ".join(b.reason for b in invalid) or "the study expands to no experiments"
        raise ConfigError(f"study {study.name!r} has no valid experiments: {reasons}")
    backends = sorted({p.config.backend for p in points})
    runners = resolve_runners(backends, runner, study.config.runners)
    preflight(points, runners)

    study_dir = _new_study_dir(Path(results_dir), study.name)
    study.to_yaml(study_dir / "study.yaml")
    store = ResultStore(study_dir)
    pairs = schedule(points, study.config)
    listeners = list(callbacks or [])
    bar = _progress_bar(len(pairs)) if progress else None
    if bar is not None:
        listeners.append(bar)
    out = StudyResult(name=study.name, dir=study_dir, invalid=invalid)
    t_start = time.perf_counter()

    def emit(kind: str, i: int, point: Point, cycle: int, **extra: Any) -> None:
        event = ProgressEvent(
            kind=kind,
            index=i,
            total=len(pairs),
            experiment_id=point.config.experiment_id,
            cycle=cycle,
            backend=point.config.backend,
            elapsed_s=time.perf_counter() - t_start,
            **extra,
        )
        for listener in listeners:
            listener(event)

    try:
        for i, (point, cycle) in enumerate(pairs):
            if i and study.config.gap_seconds:
                time.sleep(study.config.gap_seconds)
            emit("started", i, point, cycle)
            result = _run_one(runners[point.config.backend], point, cycle, study.name)
            try:
                store.write(result)
            except ResultError as exc:
                result = _failed(point, cycle, study.name, exc, runners[point.config.backend])
            out.results.append(result)
            category = result.error.category if result.error else None
            emit(
                "finished",
                i,
                point,
                cycle,
                status=result.status,
                error_category=category,
                result=result,
            )
    except KeyboardInterrupt:
        out.interrupted = True
        warnings.warn(
            f"study {study.name!r} interrupted after {len(out.results)} of {len(pairs)} "
            f"experiments; finished results are in {study_dir}",
            stacklevel=3,
        )
    finally:
        if bar is not None:
            bar.close()
    return out


def _run_one(runner: Runner, point: Point, cycle: int, study: str) -> ExperimentResult:
    try:
        result = runner.run(point.config, cycle=cycle, study=study)
    except Exception as exc:
        return _failed(point, cycle, study, exc, runner)
    return result.model_copy(update={"study": study, "point": point.overrides})


def _failed(
    point: Point, cycle: int, study: str, exc: BaseException, runner: Runner
) -> ExperimentResult:
    result = ExperimentResult.failed(point.config, exc, cycle=cycle, study=study)
    return result.model_copy(update={"point": point.overrides, **runner.metadata()})


class _TqdmListener:
    def __init__(self, total: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc="experiments", unit="exp")
        self._failed = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "finished":
            self._failed += event.status == "failed"
            self._bar.set_postfix(failed=self._failed, last=event.experiment_id)
            self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _progress_bar(total: int) -> _TqdmListener | None:
    try:
        return _TqdmListener(total)
    except ImportError:
        return None
