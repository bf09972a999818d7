"""What the importers share: safe number and dict access, labels, times, the flag."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from llem_nb.results.labels import SEPARATOR, format_value, model_name

DEFINITION_DIFFERS = "definition_differs"
KWH_J = 3.6e6

Skip = Callable[..., None]
"""``skip(path, why)``: warn that a file was skipped and why."""
Record = dict[str, Any]


def number(value: Any) -> float | None:
    """A finite float, or None (for null, text, bools, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]…``, or None where any level is missing or not a dict."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def short_hash(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def peer_label(origin: str, model: Any, *settings: tuple[str, Any]) -> str:
    """``optimum-benchmark · Llama-3.1-8B-Instruct · pytorch · batch_size=8``."""
    parts = [origin, model_name(model)]
    for key, value in settings:
        if value is None:
            continue
        parts.append(f"{key}={format_value(value)}" if key else format_value(value))
    return SEPARATOR.join(parts)


def naive_utc(text: Any, notes: list[str], what: str) -> str | None:
    """An ISO time as UTC text; a time without a zone is read as UTC, and said so."""
    if not isinstance(text, str) or not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        notes.append(f"{what} {text!r} is not an ISO time; left out")
        return None
    if stamp.tzinfo is None:
        notes.append(f"{what} has no time zone; read as UTC")
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).isoformat()


def differs(record: Record, column: str, why: str) -> None:
    """Leave ``column`` missing and say why: the peer defines it differently."""
    record[column] = None
    flags = record.setdefault("quality_flags", [])
    if DEFINITION_DIFFERS not in flags:
        flags.append(DEFINITION_DIFFERS)
    record.setdefault("warnings", []).append(f"{column} left missing: {why}")


def assign_cycles(records: Iterable[Record]) -> None:
    """Number repeats of one config (same study and experiment_id) 0, 1, … by start time."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        if record.get("cycle") is None:
            groups.setdefault((record["study"], record["experiment_id"]), []).append(record)
    for group in groups.values():
        group.sort(key=lambda r: (r.get("started_at") or "", r.get("_path") or ""))
        for cycle, record in enumerate(group):
            record["cycle"] = cycle


def csv_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
