"""Statistics over cycles: one row per config with mean, std, n and a t confidence interval.

Cycles repeat an experiment so its spread can be reported. ``summarize`` groups the
results DataFrame (default: by ``experiment_id``), keeps the successful rows, and
for each metric gives mean, sample std, n and the two-sided Student-t interval
``mean ± t(1 - (1 - confidence)/2, n - 1) · std / √n``. The t quantile is computed
here (regularised incomplete beta + bisection), so scipy is not needed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

METRICS: tuple[str, ...] = (
    "energy_per_output_token_j",
    "energy_per_output_token_net_j",
    "throughput_output_tok_s",
    "latency_s_p50",
    "ttft_ms_p50",
    "itl_ms_p50",
)
IDENTITY: tuple[str, ...] = (
    "study", "model", "backend", "precision", "batch_size", "n_prompts", "max_input_tokens",
    "max_output_tokens", "dataset", "runner", "energy_source",
)  # fmt: skip


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| > t) for Student's t with ``df`` degrees of freedom."""
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@functools.lru_cache(maxsize=4096)
def t_quantile(confidence: float, df: int) -> float:
    """The t value whose two-sided interval holds ``confidence`` (0.95 → 12.706 at df=1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if df < 1:
        return math.nan
    alpha = 1.0 - confidence
    lo, hi = 0.0, 1.0
    while t_two_sided_p(hi, df) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_two_sided_p(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * hi:
            break
    return (lo + hi) / 2.0


def summarize(
    df: pd.DataFrame,
    by: str | Sequence[str] = "experiment_id",
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per ``by`` group: identity columns, counts, and per metric
    ``<m>_mean``, ``<m>_std``, ``<m>_n``, ``<m>_ci95_low``, ``<m>_ci95_high``.

    Only ``status == "ok"`` rows and non-NaN values count; n = 1 gives NaN std and
    interval. ``n_runs``/``n_ok``/``n_failed`` count every row of the group.
    """
    import pandas as pd

    from llem_nb.errors import ConfigError

    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ConfigError(
            f"summarize: no column(s) {missing} to group by",
            field="by",
            fix="group by experiment_id or a swept column of load_results(...)",
        )
    if not 0.0 < confidence < 1.0:
        raise ConfigError(
            f"summarize: confidence={confidence!r} is not in (0, 1)",
            field="confidence",
            fix="pass e.g. 0.95 for a 95 % interval",
        )
    wanted = [m for m in (metrics or METRICS) if m in df.columns]
    label = f"ci{round(confidence * 100):g}"
    ident = [c for c in (*IDENTITY, *(c for c in df.columns if "." in c)) if c in df.columns]
    ident = [c for c in ident if c not in keys]
    ok_mask = df["status"].eq("ok") if "status" in df.columns else pd.Series(True, df.index)
    groups = df.assign(_ok=ok_mask.to_numpy()).groupby(keys, sort=True, dropna=False)
    out = groups[ident].first() if ident else groups.size().to_frame().iloc[:, :0]
    out["n_runs"] = groups.size()
    out["n_ok"] = groups["_ok"].sum().astype("int64")
    out["n_failed"] = out["n_runs"] - out["n_ok"]
    ok = df[ok_mask.to_numpy()]
    for metric in wanted:
        values = pd.to_numeric(ok[metric], errors="coerce")
        agg = values.groupby([ok[k] for k in keys], sort=True, dropna=False).agg(
            ["mean", "std", "count"]
        )
        agg = agg.reindex(out.index)
        n = agg["count"].fillna(0).astype("int64")
        t = np.array([t_quantile(confidence, int(k) - 1) if k > 1 else np.nan for k in n])
        half = t * agg["std"].to_numpy(dtype=float) / np.sqrt(np.maximum(n.to_numpy(), 1))
        out[f"{metric}_mean"] = agg["mean"].to_numpy(dtype=float)
        out[f"{metric}_std"] = agg["std"].to_numpy(dtype=float)
        out[f"{metric}_n"] = n.to_numpy()
        out[f"{metric}_{label}_low"] = out[f"{metric}_mean"] - half
        out[f"{metric}_{label}_high"] = out[f"{metric}_mean"] + half
    return out.reset_index()
