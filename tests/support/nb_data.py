"""Results for the plot, widget and report tests, made by the real measurement path.

The fake backend generates; the NVML meter reads a ``FakeNvml`` GPU whose power
ramps from idle to a batch-dependent level during the baseline, so gross and net
energy both come out of the same code a GPU host runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import validate_experiment
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.measure.harness import Harness
from llem_nb.results.store import ResultStore
from llem_nb.testing import FakeBackend, FakeGpu, FakeNvml, ramp, use_fake_backend


def measured_results(
    directory: Path,
    *,
    batch_sizes: Sequence[int] = (1, 2, 4),
    cycles: int = 2,
    study: str = "plots",
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write one result per batch size × cycle into ``directory``; returns it. Each
    result records ``batch_size`` as its swept value, as a study's sweep would.

    ``config``: settings on top of the defaults below (sections merged key by key)."""
    backend = use_fake_backend()
    FakeBackend.step_s = 0.002
    FakeBackend.fail_on = None
    store = ResultStore(directory)
    for batch_size in batch_sizes:
        for cycle in range(cycles):
            settings: dict[str, Any] = {
                "model": "fake-model",
                "backend": backend,
                "batch_size": batch_size,
                "n_prompts": 8,
                "max_output_tokens": 4,
                "gpus": [0],
                "warmup": {"runs": 0},
                "baseline": {"seconds": 0.05},
                "energy": {"source": "nvml", "poll_interval_s": 0.005},
            }
            for key, value in (config or {}).items():
                merged = isinstance(value, Mapping) and isinstance(settings.get(key), dict)
                settings[key] = {**settings[key], **value} if merged else value
            experiment = validate_experiment(settings)
            gpu = FakeGpu(power_w=ramp(80.0, 100.0 + 50.0 * batch_size, 0.05))
            poll_s = experiment.energy.poll_interval_s
            meter = NvmlMeter([0], nvml=FakeNvml([gpu]), poll_interval_s=poll_s)
            result = Harness(backend=FakeBackend(experiment), meter=meter).run(
                experiment, cycle=cycle, study=study
            )
            store.write(result.model_copy(update={"point": {"batch_size": batch_size}}))
    FakeBackend.step_s = 0.0
    return directory
