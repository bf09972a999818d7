"""One value as a reader sees it: four significant figures with thousands separators,
``—`` for missing, Yes/No, p-values and interval half-widths to two figures."""

from __future__ import annotations

import math
from typing import Any

import numpy as np  # noqa: TID253 - the report layer works on DataFrames


def number(value: float) -> str:
    """Four significant figures, thousands separated, no exponent between 1e-3 and 1e9."""
    if math.isnan(value) or math.isinf(value):
        return "—"
    if value == 0:
        return "0"
    if not 1e-3 <= abs(value) < 1e9:
        return f"{value:.3e}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    decimals = max(0, 3 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def half_width(value: float) -> str:
    """An interval's half-width: two significant figures, never an exponent."""
    if value != value or math.isinf(value):
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, 1 - math.floor(math.log10(abs(value))))
    return f"{round(value, decimals):,.{decimals}f}"


def p_value(value: Any) -> str:
    """A p-value to two significant figures, ``—`` where no test was run."""
    return "—" if value is None or value != value else f"{float(value):.2g}"


def numeric(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def cell(value: Any) -> str:
    """A value as the reader sees it (not yet escaped)."""
    import pandas as pd

    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) or "—"
    if value is None or value is pd.NA or value is pd.NaT:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "Yes" if value else "No"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return number(float(value))
    text = str(value)
    return text if text else "—"
