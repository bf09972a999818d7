"""The GPU check's reuse step (issue #15): one small study run twice in the kernel, without
and with reuse of the loaded model and the idle baseline, timed side by side.

It reports each run's wall time over the sum of its measured windows (1.0 would be nothing
but measurement) and how many times it loaded the model, through the same
``compare_reuse``/``overhead_table`` that ``benchmarks/study_overhead.py`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

REUSE_BATCH_SIZES = (1, 8)


def reuse_lines(
    model: Path,
    base: dict[str, Any],
    out: Path,
    *,
    batch_sizes: Sequence[int] = REUSE_BATCH_SIZES,
    n_prompts_per_batch: int = 4,
) -> list[str]:
    """Run the study ``model`` × ``batch_sizes`` with reuse ``never`` then ``auto`` in this
    process; the table's lines (or one line saying why it could not run)."""
    from llem_nb.study.overhead import compare_reuse, overhead_table  # noqa: PLC0415 - keeps reuse light (pydantic, yaml)
    from llem_nb.study.study import Study  # noqa: PLC0415 - keeps reuse light (pydantic, yaml)

    fields = {k: v for k, v in base.items() if k != "batch_size"}
    fields |= {"model": str(model), "backend": "pytorch", "max_input_tokens": 128}
    study = Study("gpu-check-reuse", **fields)
    for batch in batch_sizes:
        study = study.add(batch_size=batch, n_prompts=batch * n_prompts_per_batch)
    try:
        runs = compare_reuse(study, runner="local", results_dir=out / "reuse-results")
    except Exception as exc:
        return [f"reuse: could not run ({type(exc).__name__}: {exc})"]
    failed = sum(r.status != "ok" for run in runs.values() for r in run.result.results)
    lines = [f"reuse (in the kernel, {model.name}, batch {', '.join(map(str, batch_sizes))}):"]
    lines += overhead_table(runs).splitlines()
    if failed:
        lines.append(f"reuse: {failed} experiments failed (see {out / 'reuse-results'})")
    return lines
