"""The report's **Methods** paragraph, written from the results themselves.

Each sentence is one ``Statement`` built from facts the results hold (the DataFrame,
and the result files when the report knows their directory): energy source and counter,
devices and driver, idle baseline, the window rule (``measurement.min_window_s``
repeats), warm-up, prompts, cycles and the interval, flags seen, software versions, and
the published reference credited. A fact the results do not hold is never guessed: it
is left out of the paragraph and named in ``not_stated``. The sentences read as a
paper's methods section, so a researcher can paste them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

from llem_nb.measure.quality import FLAGS
from llem_nb.reporting import html as h
from llem_nb.reporting.served_methods import serving_text
from llem_nb.results.reference import REFERENCE_CREDIT

if TYPE_CHECKING:
    import pandas as pd

Record = dict[str, Any]
_VERSIONS = (
    ("python", "Python"), ("torch_version", "PyTorch"), ("transformers_version", "transformers"),
    ("vllm_version", "vLLM"), ("accelerate_version", "accelerate"),
    ("nvidia_ml_py_version", "nvidia-ml-py"),
)  # fmt: skip


@dataclass(frozen=True)
class Statement:
    """One sentence of the Methods paragraph and the name of what it states."""

    key: str
    text: str


def read_records(dirs: Iterable[Path]) -> list[Record]:
    """Every readable llem_nb result file under ``dirs`` (unreadable ones are skipped)."""
    out: list[Record] = []
    for directory in dirs:
        for path in sorted(Path(directory).rglob("*.result.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("kind") == "llem_nb.result":
                out.append(data)
    return out


def num(value: float) -> str:
    """A measured number as the paragraph prints it: three significant digits."""
    return f"{value:.3g}"


def span(values: Sequence[float], unit: str = "") -> str:
    """``a–b unit`` (or one value when they agree), three significant digits."""
    lo, hi = num(min(values)), num(max(values))
    return (lo if lo == hi else f"{lo}–{hi}") + (f" {unit}" if unit else "")


def listed(values: Iterable[Any]) -> str:
    items = sorted({str(v) for v in values if v is not None and str(v) != ""})
    return ", ".join(items)


def _config(record: Record, *path: str) -> Any:
    value: Any = record.get("config") or {}
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _ok(records: list[Record]) -> list[Record]:
    return [r for r in records if r.get("status") == "ok"]


def _short(model: Any) -> str:
    return str(model).rstrip("/").rsplit("/", 1)[-1]


def _config_keys(df: pd.DataFrame) -> list[str]:
    """What one configuration is: a study's experiment (the same one in two studies is two)."""
    return [c for c in ("study", "experiment_id") if c in df.columns]


def _scope(df: pd.DataFrame) -> Statement:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    keys = _config_keys(df)
    configs = len(df[keys].drop_duplicates()) if keys else len(df)
    parts = [f"We measured {configs} configuration{'s' * (configs != 1)}"]
    details = []
    if "model" in df.columns:
        details.append("model " + listed(_short(m) for m in df["model"].dropna()))
    for column, name in (("backend", "backend"), ("precision", "precision")):
        if column in df.columns:
            details.append(f"{name} {listed(df[column].dropna())}")
    if "batch_size" in df.columns:
        sizes = sorted({int(b) for b in df["batch_size"].dropna()})
        details.append("batch size " + ", ".join(map(str, sizes)))
    failed = len(df) - len(ok)
    text = f"{parts[0]} ({'; '.join(details)}) in {len(df)} runs (experiment × cycle)"
    text += f"; {failed} failed and {'is' if failed == 1 else 'are'} excluded." if failed else "."
    return Statement("scope", text)


def _cycles(df: pd.DataFrame) -> Statement:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    keys = _config_keys(ok)
    per = ok.groupby(keys, observed=True).size() if keys else None
    counts = sorted(set(per.tolist())) if per is not None and len(per) else [len(ok)]
    if max(counts) <= 1:
        return Statement(
            "cycles", "Each configuration was run once, so no confidence intervals are given."
        )
    return Statement(
        "cycles",
        f"Each configuration was run in repeated cycles ({span(counts)} successful per "
        "configuration); "
        "we report the mean over cycles with a 95 % confidence interval from Student's t "
        "distribution with n − 1 degrees of freedom.",
    )


def _energy(df: pd.DataFrame, records: list[Record]) -> Statement:
    ok = _ok(records)
    if ok:
        sources = Counter(str(r.get("energy_source")) for r in ok)
    else:
        rows = df[df["status"] == "ok"] if "status" in df.columns else df
        sources = Counter(str(s) for s in rows.get("energy_source", []))
    parts = []
    if len(sources) > 1:
        parts.append(
            "Energy sources: " + ", ".join(f"{s} ({n} runs)" for s, n in sorted(sources.items()))
        )
    if "nvml" in sources:
        text = (
            "GPU energy was read from the NVML total-energy counter of each GPU an experiment "
            "used, summed over those GPUs"
        )
        nvml = [r for r in ok if r.get("energy_source") == "nvml"]
        polls = {_config(r, "energy", "poll_interval_s") for r in nvml} - {None}
        if polls:
            text += f", with board power polled every {listed(num(p * 1000) for p in polls)} ms "
            text += "alongside as a cross-check"
        devices = [d for r in nvml for d in r.get("energy_devices") or []]
        methods = Counter(str(d.get("method")) for d in devices)
        if methods.get("power"):
            text += (
                f"; on {methods['power']} of {len(devices)} device readings the counter was "
                "unavailable and the polled power was integrated instead"
            )
        periods = [float(p) for d in devices if (p := d.get("counter_update_s"))]
        if periods:
            text += f"; the counter advanced every {num(median(periods) * 1000)} ms (median)"
        parts.append(text)
    if "rapl" in sources:
        parts.append("CPU package energy was read from the RAPL energy counters")
    if "estimate" in sources:
        watts = {_config(r, "energy", "cpu_w_per_core") for r in ok} - {None}
        model = f" ({listed(num(w) for w in watts)} W per fully busy core)" if watts else ""
        parts.append(
            "where no energy counter was readable, energy is an estimate from CPU time"
            f"{model}: a model, not a measurement, flagged on every such run"
        )
    if "none" in sources:
        parts.append("runs with energy source 'none' have no energy figure")
    text = "; ".join(parts)
    return Statement("energy", text[:1].upper() + text[1:] + ".")


def _devices(df: pd.DataFrame, records: list[Record]) -> Statement:
    gpus = [g for r in _ok(records) for g in (r.get("environment") or {}).get("gpus") or []]
    names = {str(g.get("name")) for g in gpus if g.get("name")}
    drivers = {str(g.get("driver_version")) for g in gpus if g.get("driver_version")}
    cuda = {str(g.get("cuda_driver_version")) for g in gpus if g.get("cuda_driver_version")}
    if not records:
        names = set(map(str, df.get("gpu_name", _empty()).dropna())) - {""}
        drivers = set(map(str, df.get("driver_version", _empty()).dropna())) - {""}
    counts = sorted({int(c) for c in df.get("gpu_count", _empty()).dropna() if int(c) > 0})
    if names:
        many = f"{span(counts)} × " if counts else ""
        text = f"Experiments ran on {many}{listed(names)}"
        if drivers:
            text += f" (NVIDIA driver {listed(drivers)}" + (
                f", CUDA {listed(cuda)})" if cuda else ")"
            )
        return Statement("devices", text + ".")
    cpus = {str((r.get("environment") or {}).get("cpu_model")) for r in records} - {"None"}
    where = f" ({listed(cpus)})" if cpus else ""
    return Statement("devices", f"Experiments ran on the CPU{where}, without a measured GPU.")


def _empty() -> Any:
    import pandas as pd

    return pd.Series([], dtype=object)


def _baseline(df: pd.DataFrame, records: list[Record]) -> Statement:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    idle = ok["idle_power_w"].dropna().astype(float).tolist() if "idle_power_w" in ok else []
    if not idle:
        return Statement(
            "baseline",
            "No idle baseline was measured for these energy sources, so only gross energy "
            "is reported.",
        )
    seconds = {_config(r, "baseline", "seconds") for r in _ok(records)} - {None}
    how = f" for {listed(num(s) for s in seconds)} s" if seconds else ""
    return Statement(
        "baseline",
        f"Idle power was measured{how} on the same devices immediately before each window "
        "and subtracted: net energy = gross energy − idle power × window length (idle power "
        f"{span(idle, 'W')} across runs); both gross and net energy are reported.",
    )


def _warmup(ok: list[Record]) -> str:
    """What happened before each window, from the warm-up each result records."""
    runs = [int((r.get("warmup") or {}).get("runs") or 0) for r in ok]
    cv = {_config(r, "warmup", "cv_threshold") for r in ok if _config(r, "warmup", "mode") == "cv"}
    if not runs or max(runs) == 0:
        return "; model loading falls outside it, and there was no warm-up run"
    until = f", until the latency CV fell below {listed(num(c) for c in cv)}" if cv else ""
    return f"; model loading and {span(runs)} warm-up run(s){until} fall outside it"


def _window(df: pd.DataFrame, records: list[Record]) -> Statement:
    ok = _ok(records)
    text = (
        "Each measured window runs from the submission of the first request to the last "
        "generated token, with the device synchronised at both ends"
    )
    if ok:
        text += _warmup(ok)
    text += "."
    rules = {_config(r, "measurement", "min_window_s") for r in ok}
    repeats = [int(r["window_repeats"]) for r in ok if r.get("window_repeats")]
    if ok and rules == {None}:
        text += (
            " The rule measurement.min_window_s was left at its default: the prompt set is "
            "repeated until the window lasts 10 s when the backend uses a GPU, and not "
            "repeated on the CPU."
        )
    elif ok:
        shown = listed(num(v) if v is not None else "default" for v in rules)
        text += (
            f" Windows shorter than measurement.min_window_s = {shown} s were extended by "
            "repeating the prompt set, the tokens of every repeat counted."
        )
    windows = df["window_s"].dropna().astype(float).tolist() if "window_s" in df else []
    clauses = []
    if repeats:
        passes = "pass" if max(repeats) == 1 else "passes"
        clauses.append(f"held {span(repeats)} {passes} over the prompt set")
    if windows:
        clauses.append(f"lasted {span(windows, 's')} (median {num(median(windows))} s)")
    if clauses:
        text += " Windows " + " and ".join(clauses) + "."
    return Statement("window", text)


def _prompts(records: list[Record]) -> Statement | None:
    ok = _ok(records)
    if not ok:
        return None

    def values(key: str) -> str:
        return listed(_config(r, key) for r in ok)

    return Statement(
        "prompts",
        f"Each run generated for {values('n_prompts')} prompts from the "
        f"'{values('dataset')}' set, at most {values('max_input_tokens')} input and "
        f"{values('max_output_tokens')} output tokens per request; energy per output token is "
        "energy divided by the tokens generated up to and including the end-of-sequence "
        "token, and input tokens are the real prompt tokens, without padding.",
    )


def _flags(df: pd.DataFrame) -> Statement:
    if "quality_flags" not in df.columns:
        return Statement("flags", "")
    counts = Counter(
        str(f) for flags in df["quality_flags"] if isinstance(flags, list) for f in flags
    )
    if not counts:
        return Statement("flags", "No quality flag was raised on any run.")
    items = [
        f"{flag} ({n} of {len(df)} runs{': ' + FLAGS[flag] if flag in FLAGS else ''})"
        for flag, n in sorted(counts.items())
    ]
    return Statement("flags", "Quality flags raised: " + "; ".join(items) + ".")


def _software(df: pd.DataFrame, records: list[Record]) -> Statement:
    envs = [r.get("environment") or {} for r in records]
    parts = []
    ours = {e.get("llem_nb_version") for e in envs} - {None}
    if not records and "llem_nb_version" in df.columns:
        ours = set(map(str, df["llem_nb_version"].dropna()))
    if ours:
        parts.append(f"llem_nb {listed(ours)}")
    for key, name in _VERSIONS:
        found = {e.get(key) for e in envs} - {None, ""}
        if found:
            parts.append(f"{name} {listed(found)}")
    return Statement("software", "Software: " + ", ".join(parts) + "." if parts else "")


def methods(
    df: pd.DataFrame, records: Sequence[Record] = (), *, reference: bool = False
) -> tuple[list[Statement], list[str]]:
    """The Methods statements for ``df`` (and its result files' ``records``), and the
    facts that could not be stated because the results do not hold them."""
    recs = list(records)
    found = [
        _scope(df), _energy(df, recs), _devices(df, recs), _baseline(df, recs),
        _window(df, recs), _prompts(recs), _cycles(df), _flags(df), _software(df, recs),
    ]  # fmt: skip
    served = serving_text(recs)
    found.append(Statement("serving", served) if served else None)
    if reference:
        found.append(Statement("reference", REFERENCE_CREDIT))
    statements = [s for s in found if s is not None and s.text]
    missing = []
    if not recs:
        missing = [
            "baseline duration", "poll interval and counter update period", "warm-up",
            "min_window_s rule and repeats", "prompts and token limits",
            "Python, PyTorch, transformers and vLLM versions",
        ]  # fmt: skip
    return statements, missing


def methods_html(statements: list[Statement], missing: list[str]) -> str:
    """The paragraph, then (apart, not for pasting) what it could not state."""
    body = " ".join(h.esc(s.text) for s in statements)
    out = f"<p id='methods-paragraph' class='methods'>{body}</p>"
    if missing:
        out += h.note(
            "Not stated, because the report was built from a DataFrame without its result "
            f"files: {', '.join(missing)}. Pass the results directory to ll.report for them."
        )
    return out
