"""``where=`` limits of ``recommend``: ``{"ttft_ms_p90": "<= 500", "backend": "vllm"}``.

Each limit is a column, an operator (``<=``, ``<``, ``>=``, ``>``, ``==``, ``!=``; none
means ``==``) and a value: a number for numeric columns, any text for ``==``/``!=``.
A config meets a limit when the mean of its cycles does (a text column: its value).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llem_nb.errors import ConfigError
from llem_nb.results.labels import format_value

if TYPE_CHECKING:
    import pandas as pd

Constraint = str | float | int
"""``"<= 500"``, ``">= 100"``, ``"== vllm"``, or a bare value (equality)."""

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Limit:
    column: str
    op: str
    value: Any

    def text(self) -> str:
        return f"{self.column} {self.op} {format_value(self.value)}"

    def holds(self, actual: Any) -> bool:
        if actual is None or (isinstance(actual, float) and math.isnan(actual)):
            return False
        try:
            return bool(_OPS[self.op](actual, self.value))
        except TypeError:
            return False


def parse_where(where: Mapping[str, Constraint] | None, df: pd.DataFrame) -> list[Limit]:
    """The limits of ``where``; ``ConfigError`` naming a bad column or comparison."""
    limits = []
    for column, raw in (where or {}).items():
        if column not in df.columns:
            raise ConfigError(
                f"recommend: where names column {column!r}, which the frame does not have",
                field="where",
                fix="use columns of load_results(...), e.g. ttft_ms_p90, throughput_output_tok_s",
            )
        op, value = "==", raw
        if isinstance(raw, str):
            text = raw.strip()
            for symbol in sorted(_OPS, key=len, reverse=True):
                if text.startswith(symbol):
                    op, value = symbol, text[len(symbol) :].strip()
                    break
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    if op not in ("==", "!="):
                        raise ConfigError(
                            f"recommend: where[{column!r}] = {raw!r} compares with "
                            f"{value!r}, which is not a number",
                            field="where",
                            fix='write e.g. "<= 500" or ">= 100"',
                        ) from None
        limits.append(Limit(column, op, value))
    return limits
