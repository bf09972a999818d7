"""Result files with chosen numbers, for the analysis tests (compare, recommend, index, CLI).

The numbers are picked by the test so that every expected figure can be worked out by
hand; the files are written by the real ``ResultStore``, as a study run writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import validate_experiment
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore


def result(
    point: Mapping[str, Any],
    cycle: int = 0,
    *,
    study: str = "sweep",
    model: str = "tiny-llama",
    energy_gross_j: float | None = 100.0,
    output_tokens: int = 100,
    input_tokens: int = 50,
    window_s: float = 10.0,
    flags: Sequence[str] = (),
    **fields: Any,
) -> ExperimentResult:
    """One ok result of the config ``point`` (top-level keys: batch_size, precision, …)."""
    config = validate_experiment({"model": model, **point})
    values: dict[str, Any] = {
        "n_requests": 4,
        "energy_source": "nvml",
        "gpu_count": 1,
        "idle_power_w": 5.0,
        "energy_net_j": None if energy_gross_j is None else energy_gross_j - 5.0 * window_s,
        "started_at": f"2026-11-30T10:{cycle:02d}:00.000+00:00",
        "finished_at": f"2026-11-30T10:{cycle:02d}:30.000+00:00",
        **fields,
    }
    return ExperimentResult(
        study=study,
        experiment_id=config.experiment_id,
        config_hash=config.config_hash,
        cycle=cycle,
        config=config.model_dump(mode="json"),
        point=dict(point),
        window_s=window_s,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        energy_gross_j=energy_gross_j,
        quality_flags=list(flags),
        warnings=[f"flag {f}" for f in flags],
        **values,
    )


def write(directory: Path, results: Iterable[ExperimentResult]) -> Path:
    store = ResultStore(directory)
    for item in results:
        store.write(item, sync=False)
    return directory


def sweep(
    directory: Path,
    energies: Mapping[int, Sequence[float]],
    *,
    study: str = "sweep",
    **fields: Any,
) -> Path:
    """A batch-size sweep: ``energies[batch]`` = gross joules per cycle (100 output tokens)."""
    return write(
        directory,
        (
            result({"batch_size": batch}, cycle, study=study, energy_gross_j=joules, **fields)
            for batch, values in energies.items()
            for cycle, joules in enumerate(values)
        ),
    )
