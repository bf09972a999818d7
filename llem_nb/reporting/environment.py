"""The report's environment: what software and hardware measured the results, and with
which energy source — grouped, one name per fact (``torch`` and ``torch_version`` are one
row, "PyTorch"), units in the names and thousands separators in the numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem_nb.reporting import html as h
from llem_nb.reporting.cells import cell

if TYPE_CHECKING:
    import pandas as pd

GROUPS = ("Software", "Hardware", "Energy source")

# raw key → (group, name shown); keys naming the same fact share a name and are merged.
FACTS: dict[str, tuple[str, str]] = {
    "llem_nb_version": ("Software", "llem_nb"), "python": ("Software", "Python"),
    "torch": ("Software", "PyTorch"), "torch_version": ("Software", "PyTorch"),
    "transformers": ("Software", "Transformers"),
    "transformers_version": ("Software", "Transformers"),
    "vllm": ("Software", "vLLM"), "vllm_version": ("Software", "vLLM"),
    "accelerate_version": ("Software", "Accelerate"),
    "nvidia_ml_py_version": ("Software", "nvidia-ml-py"), "os": ("Software", "operating system"),
    "runner": ("Software", "runner"), "image": ("Software", "container image"),
    "container_image": ("Software", "container image"),
    "container_image_digest": ("Software", "image digest"),
    "in_container": ("Software", "in a container"),
    "git_commit": ("Software", "git commit"), "backend_impl": ("Software", "backend"),
    "dtype": ("Software", "dtype"), "attn_implementation": ("Software", "attention"),
    "torch_threads": ("Software", "PyTorch threads"), "cuda": ("Software", "CUDA (PyTorch)"),
    "driver_version": ("Hardware", "NVIDIA driver"),
    "cuda_driver_version": ("Hardware", "CUDA (driver)"), "gpu_name": ("Hardware", "GPU"),
    "device": ("Hardware", "device"), "device_name": ("Hardware", "device name"),
    "cpu_model": ("Hardware", "CPU"), "cpu_count": ("Hardware", "CPU cores"),
    "ram_gib": ("Hardware", "RAM [GiB]"),
    "cuda_visible_devices": ("Hardware", "CUDA_VISIBLE_DEVICES"),
    "parameters": ("Hardware", "model parameters"),
    "parameters_embedding": ("Hardware", "embedding parameters"),
    "parameters_for_flops": ("Hardware", "parameters counted for FLOPs"),
    "tied_embeddings": ("Hardware", "tied embeddings"),
    "energy_source": ("Energy source", "source"),
}  # fmt: skip
_GPU_FACTS: dict[str, str] = {
    "name": "GPU", "driver_version": "NVIDIA driver", "cuda_driver_version": "CUDA (driver)",
    "memory_total_mib": "GPU memory [MiB]", "power_limit_w": "power limit [W]",
    "enforced_power_limit_w": "enforced power limit [W]", "max_sm_clock_mhz": "max SM clock [MHz]",
    "max_memory_clock_mhz": "max memory clock [MHz]", "persistence_mode": "persistence mode",
    "mig_mode": "MIG mode", "power_method": "power reading",
}  # fmt: skip
_ENERGY_GPU = {"power_limit_w", "enforced_power_limit_w", "power_method"}
_HIDDEN = {"python_executable", "uuid", "index", "temperature_c", "throttle_reasons",
           "sm_clock_mhz", "memory_clock_mhz", "power_avg_s"}  # fmt: skip


def records(dirs: Iterable[Path], limit: int = 200) -> list[Mapping[str, Any]]:
    """The ``environment`` of at most ``limit`` result files under ``dirs``."""
    out: list[Mapping[str, Any]] = []
    for directory in dirs:
        for path in sorted(Path(directory).rglob("*.result.json")):
            if len(out) >= limit:
                return out
            try:
                env = json.loads(path.read_text()).get("environment") or {}
            except (OSError, ValueError):
                continue
            out.append(env)
    return out


def environment(df: pd.DataFrame, envs: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(group, name, values) rows, grouped in ``GROUPS`` order, distinct values joined."""
    facts: dict[tuple[str, str], dict[str, None]] = {}

    def add(key: str, value: Any, group: str | None = None, name: str | None = None) -> None:
        if key in _HIDDEN or value in (None, "", [], {}):
            return
        known = FACTS.get(key, ("Other", key.replace("_", " ")))
        text = str(value)[:12] if key == "git_commit" else cell(value)
        facts.setdefault((group or known[0], name or known[1]), {})[text] = None

    for column in (
        "gpu_name",
        "driver_version",
        "llem_nb_version",
        "runner",
        "image",
        "energy_source",
    ):
        if column in df.columns:
            for value in df[column].dropna().unique():
                add(column, str(value))
    for env in envs:
        for key, value in env.items():
            if key == "gpus" and isinstance(value, list):
                for gpu in value:
                    for k, v in (gpu or {}).items():
                        if k in _GPU_FACTS:
                            group = "Energy source" if k in _ENERGY_GPU else "Hardware"
                            add(k, v, group, _GPU_FACTS[k])
            elif not isinstance(value, (dict, list)):
                add(key, value)
    order = {g: i for i, g in enumerate((*GROUPS, "Other"))}
    rows = [(g, n, "; ".join(v)) for (g, n), v in facts.items() if v]
    return sorted(rows, key=lambda r: order.get(r[0], len(order)))


def environment_html(rows: list[tuple[str, str, str]]) -> str:
    """One table, a sub-heading row per group."""
    if not rows:
        return h.note("No environment was recorded with these results.")
    body, group = [], None
    for g, name, value in rows:
        if g != group:
            body.append(f"<tr class='group'><th colspan='2'>{h.esc(g)}</th></tr>")
            group = g
        body.append(f"<tr><th>{h.esc(name)}</th><td>{h.esc(value)}</td></tr>")
    return (
        f"<div class='wide'><table id='table-environment' class='kv'>{''.join(body)}</table></div>"
    )
