"""``llem-nb compare DIR … [-a A -b B]``: compare two configs, or recommend one.

With ``-a`` and ``-b`` (each a label such as ``batch_size=8 · backend=vllm``, an
experiment id, or ``key=value,key=value``) it prints ``ll.compare``'s sentence and
numbers; without them, ``ll.recommend``'s pick for ``--objective`` under ``--where``
limits (``--where "ttft_ms_p90<=500"``, repeatable). ``--json`` prints the plain data.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from typing import Any

from llem_nb.errors import ConfigError
from llem_nb.results.constraints import limit_text


def selector(text: str, df: Any) -> Any:
    """A label or experiment id as given; else ``key=value,…`` as a {column: value} mapping."""
    for column in ("label", "experiment_id"):
        if column in df.columns and (df[column] == text).fillna(False).any():
            return text
    pairs = [p for p in re.split(r"\s*[,·]\s*", text) if p]
    if not pairs or not all("=" in p for p in pairs):
        return text
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = (part.strip() for part in pair.partition("="))
        out[key] = _typed(value, df[key] if key in df.columns else None)
    return out


def _typed(value: str, column: Any) -> Any:
    import pandas as pd

    if column is not None and pd.api.types.is_numeric_dtype(column):
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def limits(items: list[str]) -> dict[str, str]:
    return dict(limit_text(item, "--where") for item in items)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    from llem_nb.results.compare import compare  # noqa: PLC0415 - keeps compare light (numpy)
    from llem_nb.results.frame import load_results  # noqa: PLC0415 - keeps compare light (numpy, pandas, pydantic)
    from llem_nb.results.recommend import recommend  # noqa: PLC0415 - keeps compare light (numpy, pandas)

    df = load_results(args.dirs)
    if (args.a is None) != (args.b is None):
        raise ConfigError("compare needs both -a and -b (or neither, to recommend)", field="-a")
    if args.a is not None:
        result = compare(df, selector(args.a, df), selector(args.b, df), metric=args.metric)
        if args.json:
            print(json.dumps({k: _plain(v) for k, v in result.to_dict().items()}, indent=2))
        else:
            print(result.sentence)
        return 0
    pick = recommend(
        df,
        args.objective,
        limits(args.where),
        allow_flagged=args.allow_flagged,
        allow_single_cycle=args.allow_single_cycle,
    )
    if args.json:
        table = pick.table.astype(object).where(pick.table.notna(), None)
        data = {
            "best": pick.best, "runners_up": list(pick.runners_up), "pareto": list(pick.pareto),
            "sentence": pick.sentence, "table": table.to_dict("records"),
        }  # fmt: skip
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(pick.sentence)
    shown = ["label", f"{args.objective}_mean", *limits(args.where), "n", "excluded_because"]
    table = pick.table[[c for c in dict.fromkeys(shown) if c in pick.table.columns]]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
    return 0


def add(sub: Any) -> None:
    cmp = sub.add_parser("compare", help="compare two configs (-a, -b) or recommend one")
    cmp.add_argument("dirs", nargs="+", metavar="DIR", help="results dirs or files")
    cmp.add_argument("-a", default=None, help="config A: label, experiment id or key=value,…")
    cmp.add_argument("-b", default=None, help="config B, as -a")
    cmp.add_argument("--metric", default="energy_per_output_token_j", help="metric to compare")
    cmp.add_argument(
        "--objective", default="energy_per_output_token_j", help="what to recommend for"
    )
    cmp.add_argument(
        "--where", action="append", default=[], metavar="LIMIT", help='e.g. "ttft_ms_p90<=500"'
    )
    cmp.add_argument("--allow-flagged", action="store_true", help="use flagged rows too")
    cmp.add_argument("--allow-single-cycle", action="store_true", help="use 1-cycle configs too")
    cmp.add_argument("--json", action="store_true", help="print the result as JSON")
    cmp.set_defaults(func=cmd_compare)
