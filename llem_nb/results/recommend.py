"""``recommend``: which config to pick for an objective under limits, and what else is as good.

Per config (``by``: study × experiment_id), the mean over its successful cycles of the
objective and of every constrained metric. A config *meets* ``where`` when its means do
(``{"ttft_ms_p90": "<= 500", "throughput_output_tok_s": ">= 100"}``; operators ``<=``,
``<``, ``>=``, ``>``, ``==``, ``!=``; a bare value means ``==``). Among the configs that
meet them, the best mean wins; the *runners-up* are those a one-sided Welch test cannot
call worse than the best (p ≥ 1 − confidence). The *Pareto front* is every eligible
config that no other beats on all of the objective and the constrained metrics at once
(or, with no constraints, the objective and throughput), whether it meets the limits or not.

Rows with quality flags, and configs with a single cycle, are not *eligible*: their
numbers are doubtful or have no spread. ``recommend`` refuses (``ResultError``, naming
each reason) when nothing eligible is left, unless ``allow_flagged`` /
``allow_single_cycle`` say to use them anyway; the answer then says it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llem_nb.results.compare import DEFAULT_GROUP

if TYPE_CHECKING:
    import pandas as pd

Constraint = str | float | int
"""``"<= 500"``, ``">= 100"``, ``"== vllm"``, or a bare value (equality)."""


@dataclass(frozen=True)
class Recommendation:
    """The outcome of ``recommend``.

    ``best``: the chosen config's label (None when no eligible config meets ``where``);
    ``runners_up`` / ``pareto``: labels. ``table`` has one row per config: ``label``,
    ``study``, ``experiment_id``, ``n`` (cycles used), ``<objective>_mean``,
    ``<objective>_ci95_low``/``_high``, the mean of each constrained metric, ``eligible``,
    ``meets``, ``excluded_because`` (text or missing), ``best``, ``runner_up``,
    ``pareto``, ``p_worse_than_best``; sorted best first.
    """

    objective: str
    minimize: bool
    where: dict[str, str]
    best: str | None
    runners_up: tuple[str, ...]
    pareto: tuple[str, ...]
    table: pd.DataFrame
    confidence: float
    notes: tuple[str, ...]
    sentence: str

    def __str__(self) -> str:
        return self.sentence

    def _repr_html_(self) -> str:
        raise NotImplementedError


def recommend(
    df: pd.DataFrame,
    objective: str = "energy_per_output_token_j",
    where: Mapping[str, Constraint] | None = None,
    *,
    minimize: bool | None = None,
    pareto: Sequence[str] | None = None,
    confidence: float = 0.95,
    allow_flagged: bool = False,
    allow_single_cycle: bool = False,
    by: str | Sequence[str] = DEFAULT_GROUP,
) -> Recommendation:
    """The best config for ``objective`` among those meeting ``where``, with its runners-up
    and the Pareto front.

    ``minimize``: default from the metric (throughputs are maximised, energy, power and
    latencies minimised). ``pareto``: the metrics of the front (default: the objective
    and the constrained numeric metrics, or the objective and throughput). A bad
    ``where`` or an unknown column raises ``ConfigError`` naming it.
    """
    raise NotImplementedError
