"""Statistics over cycles: one row per config with mean, std, n and a t confidence interval.

Cycles repeat an experiment so its spread can be reported. ``summarize`` groups the
results DataFrame (default: by ``experiment_id``), keeps the successful rows, and
for each metric gives mean, sample std, n and a two-sided Student-t interval with
``t = t(1 - (1 - confidence)/2, n - 1)`` and standard error ``se = std / √n``:

- quantities that cannot be negative (energy, power, throughput, times: the columns
  with a unit in ``results.columns``) get the delta-method interval of log(mean), back
  on the linear scale: ``mean · exp(± t · se / mean)``. It is never below zero (a
  clipped interval would claim "0 J/token is plausible"), it is ≈ ``mean ± t · se``
  when the spread is small, and it widens upward where the data are skewed, as
  positive measurements are;
- anything else gets ``mean ± t · se``.

The t quantile and Welch's test are computed here (regularised incomplete beta +
bisection), so scipy is not needed; ``welch`` uses scipy's when it is installed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np  # noqa: TID253 - the DataFrame layer is made of it
from numpy.typing import ArrayLike  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb.errors import ConfigError, ResultError
from llem_nb.results.labels import SEPARATOR

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
    "study", "label", "origin", "model", "backend", "precision", "batch_size", "n_prompts",
    "max_input_tokens", "max_output_tokens", "dataset", "runner", "energy_source",
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
def t_quantile(confidence: float, df: float) -> float:
    """The t value whose two-sided interval holds ``confidence`` (0.95 → 12.706 at df=1);
    ``df`` may be fractional (Welch–Satterthwaite)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not df > 0:
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


def check_confidence(confidence: float, who: str) -> None:
    """A ``ConfigError`` naming ``who`` unless ``confidence`` is in (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ConfigError(
            f"{who}: confidence={confidence!r} is not in (0, 1)",
            field="confidence",
            fix="pass e.g. 0.95 for a 95 % interval",
        )


def analysis_frame(df: pd.DataFrame, who: str) -> pd.DataFrame:
    """``df`` with a fresh index (``pd.concat`` of two studies' frames repeats theirs, and
    rows are matched to configs by it); a ``ResultError`` when it has no rows."""
    if len(df) == 0:
        raise ResultError(
            f"{who}: the frame has no rows (no result files were loaded)",
            fix="pass load_results(DIR) of a results dir that holds finished experiments",
        )
    return df.reset_index(drop=True)


def group_keys(df: pd.DataFrame, by: str | Sequence[str], who: str) -> list[str]:
    """The columns of ``by`` that ``df`` has; a ``ConfigError`` naming ``who`` if none."""
    keys = [k for k in ([by] if isinstance(by, str) else list(by)) if k in df.columns]
    if not keys:
        raise ConfigError(
            f"{who}: none of the grouping columns {by!r} is in the frame",
            field="by",
            fix="pass the frame of load_results(...), or by='label'",
        )
    return keys


def interval(
    mean: np.ndarray, std: np.ndarray, n: np.ndarray, confidence: float, *, positive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the two-sided t interval of each mean (NaN where n < 2).

    ``positive``: the delta-method interval of log(mean), ``mean · exp(± t · se / mean)``,
    for quantities that cannot be negative (see the module docstring); where such a mean
    is 0 (e.g. every net energy clamped) the interval is [0, 0 + t · se].
    """
    mean, std, n = (np.asarray(v, dtype=float) for v in (mean, std, n))
    t = np.array([t_quantile(confidence, k - 1) if k > 1 else math.nan for k in n.ravel()])
    t = t.reshape(n.shape) if n.shape else t.reshape(())
    se = std / np.sqrt(np.maximum(n, 1))
    half = t * se
    if not positive:
        return mean - half, mean + half
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        factor = np.exp(half / mean)
        low = np.where(mean > 0, mean / factor, np.where(mean == 0, 0.0, np.nan))
        high = np.where(mean > 0, mean * factor, np.where(mean == 0, half, np.nan))
    nan = np.isnan(half)
    return np.where(nan, np.nan, low), np.where(nan, np.nan, high)


def welch(a: ArrayLike, b: ArrayLike) -> tuple[float, float, float, str]:
    """Welch's t-test of mean(b) − mean(a): (t, degrees of freedom, two-sided p, method).

    scipy's ``ttest_ind(equal_var=False)`` when scipy is installed, else the same test
    with this module's Student-t; both need two values or more on each side.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(x), len(y)
    va, vb = x.var(ddof=1) / na, y.var(ddof=1) / nb
    diff = float(y.mean() - x.mean())
    se2 = va + vb
    if se2 == 0.0:
        return (
            (0.0 if diff == 0 else math.copysign(math.inf, diff)),
            math.inf,
            (1.0 if diff == 0 else 0.0),
            "exact (no spread)",
        )
    df = se2**2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    try:
        from scipy import stats as scipy_stats
    except ImportError:
        t = diff / math.sqrt(se2)
        return t, df, t_two_sided_p(abs(t), df), "Welch's t-test (llem_nb's Student-t)"
    res = scipy_stats.ttest_ind(y, x, equal_var=False)
    return float(res.statistic), df, float(res.pvalue), "Welch's t-test (scipy)"


def pareto_mask(
    values: np.ndarray, lower_is_better: Sequence[bool], pool: np.ndarray
) -> np.ndarray:
    """Rows of ``pool`` that no other pooled row beats on every column (ties kept).

    ``values``: one row per candidate, one column per metric; rows with a NaN are not
    on the front.
    """
    signed = values * np.where(np.asarray(lower_is_better, dtype=bool), 1.0, -1.0)
    usable = np.asarray(pool, dtype=bool) & ~np.isnan(signed).any(axis=1)
    front = np.zeros(len(signed), dtype=bool)
    others = signed[usable]
    for i in np.flatnonzero(usable):
        beaten = (others <= signed[i]).all(axis=1) & (others < signed[i]).any(axis=1)
        front[i] = not beaten.any()
    return front


def swept_keys(df: pd.DataFrame) -> list[str]:
    """The swept columns, in sweep order, read back from the ``label`` column."""
    keys: dict[str, None] = {}
    if "label" in df.columns:
        for label in df["label"].dropna().unique():
            for part in str(label).split(SEPARATOR):
                key, eq, _ = part.partition("=")
                if eq and key in df.columns:
                    keys[key] = None
    return list(keys)


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
    interval. ``n_runs``/``n_ok``/``n_failed`` count every row of the group. Rows are
    sorted by study, then the swept keys (``batch_size`` 1, 2, 4, 8), then label.
    """
    import pandas as pd

    from llem_nb.results.columns import POSITIVE  # noqa: PLC0415 - keeps stats light (pandas)

    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ConfigError(
            f"summarize: no column(s) {missing} to group by",
            field="by",
            fix="group by experiment_id or a swept column of load_results(...)",
        )
    check_confidence(confidence, "summarize")
    wanted = [m for m in (metrics or METRICS) if m in df.columns]
    label = f"ci{round(confidence * 100):g}"
    swept = swept_keys(df)
    ident = [
        c
        for c in dict.fromkeys((*IDENTITY, *swept, *(c for c in df.columns if "." in c)))
        if c in df.columns and c not in keys
    ]
    ok_mask = df["status"].eq("ok").fillna(False) if "status" in df.columns else None
    ok_values = (
        ok_mask.to_numpy(dtype=bool) if ok_mask is not None else np.ones(len(df), dtype=bool)
    )
    groups = df.assign(_ok=ok_values).groupby(keys, sort=True, dropna=False, observed=True)
    out = groups[ident].first() if ident else groups.size().to_frame().iloc[:, :0]
    out["n_runs"] = groups.size()
    out["n_ok"] = groups["_ok"].sum().astype("int64")
    out["n_failed"] = out["n_runs"] - out["n_ok"]
    ok = df[ok_values]
    for metric in wanted:
        values = pd.to_numeric(ok[metric], errors="coerce")
        agg = values.groupby([ok[k] for k in keys], sort=True, dropna=False, observed=True).agg(
            ["mean", "std", "count"]
        )
        agg = agg.reindex(out.index)
        n = agg["count"].fillna(0).astype("int64").to_numpy()
        mean = agg["mean"].to_numpy(dtype=float)
        std = agg["std"].to_numpy(dtype=float)
        low, high = interval(mean, std, n, confidence, positive=metric in POSITIVE)
        out[f"{metric}_mean"] = mean
        out[f"{metric}_std"] = std
        out[f"{metric}_n"] = n
        out[f"{metric}_{label}_low"] = low
        out[f"{metric}_{label}_high"] = high
    out = out.reset_index()
    order = [c for c in dict.fromkeys(("study", *swept, "label", *keys)) if c in out.columns]
    if order:
        out = out.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    return out
