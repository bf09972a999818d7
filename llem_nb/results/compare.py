"""``compare``: is config B better than config A on a metric, by how much, and how sure?

Two configs are two groups of cycles (rows of ``load_results``). The test is Welch's
t-test on the cycles' values (scipy's when scipy is installed, else the Student-t in
``results.stats``: the same numbers). The ratio B/A gets a confidence interval on the
log scale (delta method with Welch–Satterthwaite degrees of freedom), so it never goes
below zero and B/A and A/B are exact inverses. The answer is plain data (``Comparison``)
with a sentence a person can paste: "B uses 23 % ± 4 % less energy per output token
than A; n = 5 cycles each".
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb.errors import ConfigError, ResultError
from llem_nb.results.html import kv_table
from llem_nb.results.stats import analysis_frame, check_confidence, group_keys, t_quantile, welch

if TYPE_CHECKING:
    import pandas as pd

Selector = str | Mapping[str, Any]
"""Which config: its ``label`` (``"batch_size=8"``), its ``experiment_id``, or a mapping
of column → value that its rows match (``{"batch_size": 8, "backend": "vllm"}``)."""

DEFAULT_GROUP: tuple[str, ...] = ("study", "experiment_id")
"""What one config is: the rows that share these columns (the same config in two studies,
e.g. on two machines, stays two configs)."""


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare``: both groups, the test, the ratio and a sentence.

    ``ratio`` is mean(B) / mean(A); ``change_pct`` is ``(ratio - 1) × 100`` (negative:
    B is lower); ``change_pct_pm`` is half the width of the ratio's interval, in percent.
    ``p_value`` is two-sided; ``significant`` is ``p_value < 1 - confidence``.
    ``caveats`` name what weakens the answer (quality flags on the rows, estimated energy).
    """

    metric: str
    a: str
    b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    ratio: float
    ratio_low: float
    ratio_high: float
    change_pct: float
    change_pct_pm: float
    t: float
    df: float
    p_value: float
    significant: bool
    confidence: float
    method: str
    caveats: tuple[str, ...]
    sentence: str

    def __str__(self) -> str:
        return self.sentence

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python values (for JSON, a report, a DataFrame row)."""
        out = dataclasses.asdict(self)
        out["caveats"] = list(self.caveats)
        return out

    def _repr_html_(self) -> str:
        rows: list[tuple[str, Any]] = [
            ("A", f"{self.a}: mean {self.mean_a:.4g} (sd {self.std_a:.2g}, n = {self.n_a})"),
            ("B", f"{self.b}: mean {self.mean_b:.4g} (sd {self.std_b:.2g}, n = {self.n_b})"),
            (
                f"B / A ({self.confidence * 100:g} % interval)",
                f"{self.ratio:.4g} ({self.ratio_low:.4g} – {self.ratio_high:.4g})",
            ),
            (
                "test",
                f"{self.method}: t = {self.t:.3g}, df = {self.df:.3g}, p = {self.p_value:.3g}",
            ),
        ]
        rows += [("caveat", c) for c in self.caveats]
        return f"<p>{html.escape(self.sentence)}</p>" + kv_table(
            f"compare: {metric_phrase(self.metric)}", rows
        )


_PHRASES: dict[str, tuple[str, str, str]] = {
    # metric: (verb, lower word, what) → "B uses 23 % less energy per output token than A"
    "energy_per_output_token_j": ("uses", "less", "energy per output token"),
    "energy_per_output_token_net_j": ("uses", "less", "net energy per output token"),
    "energy_per_token_j": ("uses", "less", "energy per token (input + output)"),
    "energy_per_request_j": ("uses", "less", "energy per request"),
    "energy_gross_j": ("uses", "less", "energy"),
    "energy_net_j": ("uses", "less", "net energy"),
    "avg_power_w": ("draws", "less", "power"),
}
_NAMES = {
    "throughput_output_tok_s": "output throughput",
    "throughput_total_tok_s": "total throughput",
    "ttft_ms_p50": "median TTFT",
    "ttft_ms_p90": "p90 TTFT",
    "ttft_ms_p99": "p99 TTFT",
    "itl_ms_p50": "median inter-token latency",
    "itl_ms_p90": "p90 inter-token latency",
    "latency_s_p50": "median request latency",
    "latency_s_mean": "mean request latency",
}


def metric_phrase(metric: str) -> str:
    """How a sentence names ``metric`` ("energy per output token", "p90 TTFT")."""
    if metric in _PHRASES:
        return _PHRASES[metric][2]
    return _NAMES.get(metric, metric)


def _pct(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def _select(df: pd.DataFrame, selector: Selector, keys: list[str], side: str) -> pd.DataFrame:
    """The rows of the one config ``selector`` names; ConfigError when it names 0 or 2+."""
    import pandas as pd

    if isinstance(selector, str):
        hit = pd.Series(False, index=df.index)
        for column in ("label", "experiment_id"):
            if column in df.columns:
                hit |= df[column].astype(object).eq(selector).fillna(False).astype(bool)
        what = f"{side}={selector!r}"
    elif isinstance(selector, Mapping):
        unknown = [c for c in selector if c not in df.columns]
        if unknown:
            raise ConfigError(
                f"compare: {side} names column(s) {unknown} that the frame does not have",
                field=side,
                fix="use columns of load_results(...), e.g. batch_size, backend, label",
            )
        hit = pd.Series(True, index=df.index)
        for column, value in selector.items():
            hit &= df[column].astype(object).eq(value).fillna(False).astype(bool)
        what = f"{side}={dict(selector)!r}"
    else:
        raise ConfigError(
            f"compare: {side} must be a label, an experiment_id or a {{column: value}} mapping",
            field=side,
            fix='e.g. a="batch_size=1" or a={"batch_size": 1}',
        )
    rows = df[hit.to_numpy(dtype=bool)]
    n_configs = rows.groupby(keys, dropna=False, observed=True).ngroups if len(rows) else 0
    if n_configs != 1:
        known = sorted(df["label"].dropna().astype(str).unique()) if "label" in df else []
        if not n_configs:
            raise ConfigError(
                f"compare: {what} matches no row",
                field=side,
                fix=f"pass one of these labels: {', '.join(known[:12])}",
            )
        labels = sorted(rows["label"].astype(str).unique()) if "label" in rows else []
        raise ConfigError(
            f"compare: {what} matches {n_configs} configs ({', '.join(labels[:8])}); "
            "a side must be one config",
            field=side,
            fix="add columns to the mapping (e.g. study, backend) or pass one config's label",
        )
    return rows


def _name(rows: pd.DataFrame, several_studies: bool) -> str:
    label = str(rows["label"].iloc[0]) if "label" in rows.columns else "?"
    if several_studies and "study" in rows.columns:
        return f"{rows['study'].iloc[0]}: {label}"
    return label


def _values(
    rows: pd.DataFrame, metric: str, name: str
) -> tuple[np.ndarray, tuple[list[str], list[str]]]:
    """The side's values of ``metric`` and (its quality flags, its unmeasured energy sources)."""
    import pandas as pd

    ok = (
        rows[rows["status"].eq("ok").fillna(False).to_numpy(dtype=bool)]
        if "status" in rows
        else rows
    )
    values = pd.to_numeric(ok[metric], errors="coerce").dropna().to_numpy(dtype=float)
    if len(values) < 2:
        raise ResultError(
            f"compare: {name} has {len(values)} successful cycle(s) with {metric}; "
            "a test needs at least 2 on each side",
            fix="run more cycles (Study.cycles(3)); energy_source 'none' measures no energy",
        )
    flags = (
        sorted({f for fl in ok["quality_flags"] for f in (fl or [])})
        if "quality_flags" in ok.columns
        else []
    )
    sources: list[str] = []
    if "energy_source" in ok.columns and metric.startswith(("energy", "avg_power")):
        sources = sorted({str(s) for s in ok["energy_source"].dropna().tolist()})
        sources = sources if any(s in ("estimate", "none") for s in sources) else []
    return values, (flags, sources)


def _caveats(
    name_a: str, name_b: str, a: tuple[list[str], list[str]], b: tuple[list[str], list[str]]
) -> list[str]:
    """What weakens the answer, said once when both sides share it."""
    out = []
    for i, form in enumerate(("rows flagged {}", "energy from {}, not a measurement")):
        left, right = a[i], b[i]
        if left and left == right:
            out.append(form.format(", ".join(left)) + " (both)")
            continue
        out += [
            f"{name}: {form.format(', '.join(v))}"
            for name, v in ((name_a, left), (name_b, right))
            if v
        ]
    return out


def _ratio_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """mean(b)/mean(a) and its interval on the log scale (delta method, Welch df)."""
    ma, mb = float(a.mean()), float(b.mean())
    if not (ma > 0 and mb > 0):
        return math.nan, math.nan, math.nan
    ua = a.var(ddof=1) / (len(a) * ma * ma)
    ub = b.var(ddof=1) / (len(b) * mb * mb)
    ratio = mb / ma
    if ua + ub == 0:
        return ratio, ratio, ratio
    dof = (ua + ub) ** 2 / (ua**2 / (len(a) - 1) + ub**2 / (len(b) - 1))
    half = t_quantile(confidence, dof) * math.sqrt(ua + ub)
    return ratio, ratio * math.exp(-half), ratio * math.exp(half)


def _span(low: float, high: float, less: str, more: str) -> str:
    """An interval of percent changes in words: "10 % to 77 % less", "11 % less to 464 % more"."""
    if high < 0:
        return f"{_pct(-high)} % to {_pct(-low)} % {less}"
    if low > 0:
        return f"{_pct(low)} % to {_pct(high)} % {more}"
    return f"{_pct(-low)} % {less} to {_pct(high)} % {more}"


def _sentence(c: dict[str, Any]) -> str:
    metric, change, pm = c["metric"], c["change_pct"], c["change_pct_pm"]
    if c["n_a"] == c["n_b"]:
        counts = f"n = {c['n_a']} cycles each"
    else:
        counts = f"n = {c['n_a']} and {c['n_b']} cycles"
    test = f"{c['method']}, p = {c['p_value']:.2g}"
    if math.isnan(change):
        diff = c["mean_b"] - c["mean_a"]
        body = f"{c['b']} differs from {c['a']} by {diff:+.4g} in {metric_phrase(metric)}"
    else:
        verb, less, what = _PHRASES.get(metric, ("has", "lower", metric_phrase(metric)))
        word = less if change < 0 else {"less": "more", "lower": "higher"}[less]
        more = {"less": "more", "lower": "higher"}[less]
        low, high = (c["ratio_low"] - 1) * 100, (c["ratio_high"] - 1) * 100
        if high - change > 1.5 * (change - low) or change - low > 1.5 * (high - change):
            body = f"{c['b']} {verb} {_pct(abs(change))} % {word} {what} than {c['a']}"
            test = f"{c['confidence'] * 100:g} % interval: {_span(low, high, less, more)}; {test}"
        else:
            amount = f"{_pct(abs(change))} % ± {_pct(pm)} %"
            body = f"{c['b']} {verb} {amount} {word} {what} than {c['a']}"
    if not c["significant"]:
        body = (
            f"{c['b']} and {c['a']} do not differ significantly in {metric_phrase(metric)} "
            f"at {c['confidence'] * 100:g} %: {body}"
        )
    text = f"{body} ({test}); {counts}."
    if c["caveats"]:
        text += " Caveats: " + "; ".join(c["caveats"]) + "."
    return text


def compare(
    df: pd.DataFrame,
    a: Selector,
    b: Selector,
    metric: str = "energy_per_output_token_j",
    *,
    confidence: float = 0.95,
    by: str | Sequence[str] = DEFAULT_GROUP,
) -> Comparison:
    """Compare config ``b`` with config ``a`` on ``metric`` over their successful cycles.

    ``a``/``b``: a ``label``, an ``experiment_id`` or a {column: value} mapping; each
    must select exactly one config (``by`` says what a config is), else ``ConfigError``
    naming the candidates. Failed rows never count; flagged rows count and are named in
    ``caveats`` and the sentence. Each side needs at least two values of ``metric``
    (cycles), else ``ResultError`` saying how to get them (``Study.cycles(3)``).
    """
    df = analysis_frame(df, "compare")
    if metric not in df.columns:
        raise ConfigError(
            f"compare: no column {metric!r}",
            field="metric",
            fix="pick a numeric column of load_results(...), e.g. energy_per_output_token_j",
        )
    check_confidence(confidence, "compare")
    keys = group_keys(df, by, "compare")
    rows_a, rows_b = _select(df, a, keys, "a"), _select(df, b, keys, "b")
    several = "study" in df.columns and df["study"].nunique() > 1
    name_a, name_b = _name(rows_a, several), _name(rows_b, several)
    if name_a == name_b:
        name_a, name_b = f"A ({name_a})", f"B ({name_b})"
    va, doubts_a = _values(rows_a, metric, name_a)
    vb, doubts_b = _values(rows_b, metric, name_b)
    t, dof, p, method = welch(va, vb)
    ratio, low, high = _ratio_interval(va, vb, confidence)
    fields: dict[str, Any] = {
        "metric": metric,
        "a": name_a,
        "b": name_b,
        "n_a": len(va),
        "n_b": len(vb),
        "mean_a": float(va.mean()),
        "mean_b": float(vb.mean()),
        "std_a": float(va.std(ddof=1)),
        "std_b": float(vb.std(ddof=1)),
        "ratio": ratio,
        "ratio_low": low,
        "ratio_high": high,
        "change_pct": (ratio - 1) * 100,
        "change_pct_pm": (high - low) / 2 * 100,
        "t": t,
        "df": dof,
        "p_value": p,
        "significant": bool(p < 1 - confidence),
        "confidence": confidence,
        "method": method,
        "caveats": tuple(_caveats(name_a, name_b, doubts_a, doubts_b)),
    }
    return Comparison(**fields, sentence=_sentence(fields))
