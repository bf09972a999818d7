"""The GPU check's container-path step (issue #13): one config measured in this process and
through the container entrypoint exactly as a container runs it, rows side by side.

``run_entrypoint`` starts ``python -m llem_nb.runners.entrypoint`` with a private exchange
dir and ``LLEM_CONFIG_PATH``, and reads the result file back, as the Docker runner does.
No Docker is needed. Both rows should agree within run-to-run noise. A gap would mean the
container path measures differently: other devices, another energy source, or a lost
field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem_nb.measure.harness import Harness
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
from llem_nb.runners.exchange import run_entrypoint

ROWS = (
    ("energy_source", "source", "{}"),
    ("window_s", "window_s", "{:.2f}"),
    ("output_tokens", "out_tok", "{:.0f}"),
    ("throughput_output_tok_s", "tok/s", "{:.4g}"),
    ("energy_per_output_token_j", "J/tok", "{:.4g}"),
    ("energy_per_output_token_net_j", "net J/tok", "{:.4g}"),
    ("ttft_ms_p50", "ttft_ms", "{:.4g}"),
)
RATIOS = ("throughput_output_tok_s", "energy_per_output_token_j")


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def side_by_side(local: ExperimentResult, entry: ExperimentResult) -> list[str]:
    """The two rows, one line each, then the entrypoint ÷ local ratios and the flags."""
    head = f"{'path':<12}" + "".join(f"{title:>12}" for _, title, _ in ROWS)
    lines = [head]
    for name, result in (("in-process", local), ("entrypoint", entry)):
        cells = "".join(f"{_cell(getattr(result, k), fmt):>12}" for k, _, fmt in ROWS)
        lines.append(f"{name:<12}{cells}")
    ratios = []
    for key in RATIOS:
        a, b = getattr(local, key), getattr(entry, key)
        ratios.append(f"{key} {b / a:.3f}" if a and b is not None else f"{key} -")
    lines.append("entrypoint ÷ in-process: " + ", ".join(ratios))
    for name, result in (("in-process", local), ("entrypoint", entry)):
        flags = ", ".join(result.quality_flags) or "-"
        lines.append(f"flags {name}: {flags}")
    return lines


def entrypoint_lines(config: Any, out: Path) -> list[str]:
    """Measure ``config`` in this process, then through the entrypoint; the comparison's lines
    (or one line saying which path failed and why). Both results are written under ``out``."""
    study = "gpu-check-entrypoint"
    try:
        local = Harness().run(config, study=study)
    except Exception as exc:
        return [f"entrypoint: the in-process run failed ({type(exc).__name__}: {exc})"]
    try:
        entry = run_entrypoint(config, study=study)
    except Exception as exc:
        return [f"entrypoint: the entrypoint run failed ({type(exc).__name__}: {exc})"]
    for path, result in (("in-process", local), ("entrypoint", entry)):
        ResultStore(out / "entrypoint-results" / path).write(result)
    return [f"container path (entrypoint, no Docker), {Path(str(config.model)).name} "
            f"batch {config.batch_size}:", *side_by_side(local, entry)]  # fmt: skip
