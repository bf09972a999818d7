"""The notebook-facing Study builder: name, base fields, sweep axes, cycles, runners.

A ``Study`` is a thin, chainable editor over a ``StudyConfig``; it validates every
change as it is made so a typo fails at the line that wrote it, not an hour into
a sweep. Running is delegated to ``llem_nb.run.loop``: ``run()`` in this thread,
``start()`` in a background thread, ``Study.resume(dir)`` to finish a stopped run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from llem_nb.config.experiment import ExperimentConfig, config_error, validate_experiment
from llem_nb.config.keys import check_key, normalize_key, set_dotted
from llem_nb.config.sections import CycleOrder, Reuse
from llem_nb.config.study import InvalidPoint, Point, StudyConfig, check_axis_value, expand
from llem_nb.errors import ConfigError
from llem_nb.results.html import flagged, frame_html, kv_table
from llem_nb.run.definition import read_definition
from llem_nb.run.handle import RunHandle
from llem_nb.run.options import RunnerArg, options_signature
from llem_nb.run.start import prepare_run, run_study

if TYPE_CHECKING:
    import pandas as pd

    from llem_nb.run.handle import RunHandle
    from llem_nb.run.result import StudyResult


class Study:
    """A sweep over experiment settings, built in a notebook.

    Immutable: every builder method (``sweep``, ``add``, ``cycles``, ``runners``, ``gap``,
    ``cooldown``, ``reuse``) returns a new ``Study`` and leaves the one it was called on as it was,
    so two studies built from one base never share axes::

        base = Study("bs", model=ll.demo_model())
        small, large = base.sweep(batch_size=[1, 2]), base.sweep(batch_size=[8, 16])
    """

    def __init__(self, name: str, **base_fields: Any) -> None:
        base = {normalize_key(k): v for k, v in base_fields.items()}
        self._config = StudyConfig.load({"name": name, "base": _nest(base)})
        self._check_base()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, config: StudyConfig) -> Study:
        study = cls.__new__(cls)
        study._config = config
        study._check_base()
        return study

    @classmethod
    def from_yaml(cls, path: str | Path) -> Study:
        return cls.from_config(StudyConfig.from_yaml(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Study:
        return cls.from_config(StudyConfig.load(data))

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = self._config.to_yaml_text()
        if path is not None:
            Path(path).write_text(text)
        return text

    def _check_base(self) -> None:
        """The base alone must be valid (with a stand-in model when the sweep sets it)."""
        validate_experiment({"model": "placeholder", **self._config.base})

    def _update(self, **changes: Any) -> Study:
        """A new Study: this one's definition with ``changes``, validated."""
        data = self._config.model_dump()
        data.update(changes)
        try:
            config = StudyConfig.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, StudyConfig) from None
        study = type(self).__new__(type(self))
        study._config = config
        return study

    # ------------------------------------------------------------------ builder API

    def sweep(self, axes: Mapping[str, Any] | None = None, /, **more: Any) -> Study:
        """Add sweep axes; dotted keys as a dict, or ``decoder__temperature=[…]`` as kwargs."""
        new = {**(axes or {}), **more}
        sweep = dict(self._config.sweep)
        for raw_key, values in new.items():
            key = check_key(raw_key)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                values = [values]
            values = list(values)
            if not values:
                raise ConfigError(
                    f"sweep axis {key!r} is empty", field=key, fix="give at least one value"
                )
            for value in values:
                check_axis_value(key, value, self._config.base)
            sweep[key] = values
        return self._update(sweep=sweep)

    def add(self, **fields: Any) -> Study:
        """Add one explicit experiment (fields override the base)."""
        point = _nest({normalize_key(k): v for k, v in fields.items()})
        return self._update(experiments=[*self._config.experiments, point])

    def cycles(self, n: int, order: CycleOrder = "sequential", seed: int = 0) -> Study:
        """Repeat each experiment ``n`` times: ``sequential``, ``interleaved`` or ``shuffled``."""
        return self._update(cycles={"n": n, "order": order, "seed": seed})

    def runners(self, **mapping: str) -> Study:
        """Choose a runner per backend, e.g. ``runners(vllm="subprocess")``."""
        return self._update(runners={**self._config.runners, **mapping})

    def gap(self, seconds: float) -> Study:
        """Pause between experiments (lets the GPU cool); recorded as ``gap_s``."""
        return self._update(gap_seconds=seconds)

    def cooldown(
        self,
        until_within_c: float | None,
        max_s: float = 300.0,
        *,
        idle_c: float | None = None,
        poll_s: float = 1.0,
    ) -> Study:
        """After the gap, wait until every GPU is within ``until_within_c`` °C of idle.

        Idle is ``idle_c``, else each GPU's temperature when the run starts; the wait
        ends after ``max_s`` regardless. Results record ``cooldown_s``,
        ``cooldown_reached`` and a ``cooldown_note`` (e.g. skipped: no GPU here).
        ``None`` turns the cooldown off.
        """
        return self._update(
            cooldown={
                "until_within_c": until_within_c,
                "max_s": max_s,
                "idle_c": idle_c,
                "poll_s": poll_s,
            }
        )

    def reuse(self, mode: Reuse) -> Study:
        """``"auto"`` (default): points that load the same model share it, one after another
        (its warm-up too, and an idle baseline younger than ``baseline.max_age_s``);
        ``"never"``: every experiment loads, warms up and measures its baseline afresh."""
        return self._update(reuse=mode)

    # ------------------------------------------------------------------ views

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> StudyConfig:
        return self._config

    @property
    def points(self) -> list[Point]:
        return expand(self._config)[0]

    @property
    def invalid(self) -> list[InvalidPoint]:
        """Points the sweep produced that failed validation, with the reason."""
        return expand(self._config)[1]

    @property
    def experiments(self) -> list[ExperimentConfig]:
        return [p.config for p in self.points]

    def preview(self) -> pd.DataFrame:
        """One row per expanded point: its id, swept values and main settings."""
        import pandas as pd

        rows = []
        for point in self.points:
            c = point.config
            rows.append(
                {
                    "experiment_id": c.experiment_id,
                    "model": c.model,
                    "backend": c.backend,
                    "precision": c.precision,
                    "batch_size": c.batch_size,
                    "n_prompts": c.n_prompts,
                    "max_output_tokens": c.max_output_tokens,
                    **point.overrides,
                }
            )
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ running

    @options_signature()
    def run(
        self, runner: RunnerArg = None, results_dir: str | Path = "results", **options: Any
    ) -> StudyResult:
        """Run every point × cycle; returns a ``StudyResult`` with ``.df`` and ``.dir``.

        ``options``: the other fields of ``llem_nb.run.options.RunOptions`` (``progress``,
        ``callbacks``, ``resume``, ``retry_failed``, ``force``, ``nvml``), each documented
        there; an unknown name is refused before anything runs. Results go to a new dir
        ``<results_dir>/<name>_<timestamp>``, locked while the run lasts. ``resume=True``
        instead continues the latest run of this study under ``results_dir``
        (``resume=<dir>``: that one): finished experiments are skipped, interrupted ones and
        those the machine failed rerun, the others that failed rerun only with
        ``retry_failed=True`` (a ``ResumeWarning`` says how many wait). A study whose
        definition changed since is refused (the error names what changed) unless
        ``force=True``. KeyboardInterrupt stops cleanly and returns the partial result
        (``interrupted=True``).
        """
        return run_study(self.config, runner=runner, results_dir=results_dir, **options)

    @options_signature(progress=False)
    def start(
        self, runner: RunnerArg = None, results_dir: str | Path = "results", **options: Any
    ) -> RunHandle:
        """Like ``run()`` (the same options; no progress view unless ``progress=True``) but in
        a background thread: returns a ``RunHandle`` at once.

        Bad input raises here, before anything runs. ``handle.wait()`` returns the
        StudyResult; ``handle.stop()`` stops cleanly; ``handle.progress`` is a snapshot.
        """
        options = {"progress": False, **options}
        return RunHandle(
            prepare_run(self.config, runner=runner, results_dir=results_dir, **options)
        )

    @classmethod
    @options_signature(skip=("results_dir", "resume"))
    def resume(cls, study_dir: str | Path, runner: RunnerArg = None, **options: Any) -> StudyResult:
        """Finish the run in ``study_dir`` (``StudyResult.dir``), after a crash or interrupt.

        Reads the definition from its ``study.yaml``; runs exactly the experiment ×
        cycle pairs that have no valid result yet, or whose failure was the machine's
        (disk, interrupt, crashed worker); the experiments' own failures too with
        ``retry_failed=True``. A ``study.yaml`` edited since the last run is refused
        unless ``force=True``. Works after a kernel restart: nothing but the dir is needed.
        Other options as ``run()``'s.
        """
        for name in ("results_dir", "resume"):
            if name in options:
                raise ConfigError(
                    f"Study.resume takes no {name!r}: the study dir says where",
                    field=name,
                    fix="pass the study dir as the first argument",
                )
        study = cls.from_config(read_definition(Path(study_dir)))
        parent = Path(study_dir).parent
        return study.run(runner, parent, resume=study_dir, **options)

    def __repr__(self) -> str:
        points = self.points
        return (
            f"Study({self.name!r}, {len(points)} experiments × {self._config.cycles.n} cycles, "
            f"axes={list(self._config.sweep)})"
        )

    def _repr_html_(self) -> str:
        return study_html(self)


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        set_dotted(out, key, value)
    return out


def study_html(study: Study) -> str:
    cfg = study.config
    points, invalid = study.points, study.invalid
    rows: list[tuple[str, Any]] = [
        ("experiments", len(points)),
        ("cycles", f"{cfg.cycles.n} ({cfg.cycles.order})"),
        ("runs", len(points) * cfg.cycles.n),
    ]
    if invalid:
        reasons = "; ".join(sorted({p.reason for p in invalid}))[:300]
        rows.append(("dropped points", flagged(f"{len(invalid)}: {reasons}", False)))
    rows += [(f"base.{k}", v) for k, v in cfg.base.items()]
    rows += [(f"sweep.{k}", ", ".join(map(str, v))) for k, v in cfg.sweep.items()]
    rows += [(f"runner.{k}", v) for k, v in cfg.runners.items()]
    if cfg.gap_seconds:
        rows.append(("gap between experiments [s]", cfg.gap_seconds))
    rows.append(("reuse loaded models", cfg.reuse))
    preview = study.preview()
    keep = ["experiment_id", *(c for c in preview.columns if c in cfg.sweep or "." in c)]
    table = frame_html(preview[[c for c in dict.fromkeys(keep) if c in preview.columns]])
    return kv_table(f"Study {cfg.name}", rows) + (table if len(points) else "")
