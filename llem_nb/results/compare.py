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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
        raise NotImplementedError

    def _repr_html_(self) -> str:
        raise NotImplementedError


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
    raise NotImplementedError
