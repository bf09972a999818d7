"""``where=`` limits of ``recommend``: ``{"ttft_ms_p90": "<= 500", "backend": "vllm"}``.

Each limit is a column, an operator (``<=``, ``<``, ``>=``, ``>``, ``==``, ``!=``; none
means ``==``) and a value: a number for numeric columns, any text for ``==``/``!=`` on a
text column. The CLI's text form, ``"ttft_ms_p90<=500"`` (one string or a list of them),
is accepted too. A config meets a limit when the mean of its cycles does (a text column:
its value).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llem_nb.errors import ConfigError
from llem_nb.results.labels import format_value

if TYPE_CHECKING:
    import pandas as pd

Constraint = str | float | int
"""``"<= 500"``, ``">= 100"``, ``"== vllm"``, or a bare value (equality)."""

Where = Mapping[str, Constraint] | str | Sequence[str]
"""``{"ttft_ms_p90": "<= 500"}``, or the CLI's text: ``"ttft_ms_p90<=500"`` or a list of those."""

SYNTAX = 'write e.g. where={"ttft_ms_p90": "<= 500"} or where="ttft_ms_p90<=500"'
_LIMIT = re.compile(r"^\s*([\w.]+)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*$")

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


def limit_text(item: str, field: str = "where") -> tuple[str, str]:
    """``"ttft_ms_p90<=500"`` → ``("ttft_ms_p90", "<= 500")``; ``ConfigError`` otherwise."""

    match = _LIMIT.match(item)
    if match is None:
        raise ConfigError(
            f"{field} {item!r} is not COLUMN OP VALUE (OP one of {', '.join(_OPS)})",
            field=field,
            fix=SYNTAX if field == "where" else 'e.g. --where "ttft_ms_p90<=500"',
        )
    return match.group(1), f"{match.group(2)} {match.group(3)}"


def _as_mapping(where: Where | None) -> Mapping[str, Constraint]:
    if where is None:
        return {}
    if isinstance(where, str):
        where = [where]
    if isinstance(where, Mapping):
        return where
    return dict(limit_text(str(item)) for item in where)


def _split(column: str, raw: Constraint, numeric: bool) -> tuple[str, Any]:
    """(operator, value) of one limit; a value that cannot be compared is a ``ConfigError``."""

    if not isinstance(raw, str):
        return "==", raw
    text = raw.strip()
    op, value = "==", text
    for symbol in sorted(_OPS, key=len, reverse=True):
        if text.startswith(symbol):
            op, value = symbol, text[len(symbol) :].strip()
            break
    try:
        return op, float(value)
    except ValueError:
        pass
    if numeric or op not in ("==", "!=") or value[:1] in ("<", ">", "=", "!"):
        raise ConfigError(
            f"recommend: where[{column!r}] = {raw!r} compares with {value!r}, which is not "
            f"a number; a limit is an operator ({', '.join(_OPS)}) and a number",
            field="where",
            fix=f'{SYNTAX}; e.g. {{"{column}": "<= 500"}}',
        )
    return op, value


def parse_where(where: Where | None, df: pd.DataFrame) -> list[Limit]:
    """The limits of ``where``; ``ConfigError`` naming a bad column or comparison."""
    import pandas as pd

    limits = []
    for column, raw in _as_mapping(where).items():
        if column not in df.columns:
            raise ConfigError(
                f"recommend: where names column {column!r}, which the frame does not have",
                field="where",
                fix="use columns of load_results(...), e.g. ttft_ms_p90, throughput_output_tok_s",
            )
        dtype = df[column].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        limits.append(Limit(column, *_split(column, raw, numeric)))
    return limits
