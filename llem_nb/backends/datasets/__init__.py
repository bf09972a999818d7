"""Prompt datasets: the built-in prompt set and user ``.jsonl`` files.

Experiments name a dataset (a built-in name or a path) and a prompt count; this
module turns that into the same list of prompt texts in every process, so runs
on different machines, runners and days measure identical workloads.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from llem_nb.errors import ConfigError

__all__ = [
    "BUILTIN_DATASETS",
    "TEXT_FIELDS",
    "check_dataset",
    "dataset_info",
    "load_prompts",
    "read_jsonl_prompts",
]

BUILTIN_DATASETS: dict[str, str] = {"builtin": "builtin.jsonl"}
"""Built-in dataset name -> resource file inside this package."""

TEXT_FIELDS: tuple[str, ...] = ("prompt", "text", "instruction", "question")
"""Record keys recognised as the prompt text, in order of preference."""

_LINE_FIX = 'fix the JSON on that line: one object ({"prompt": "..."}) or string per line'


def load_prompts(dataset: str, n: int, seed: int = 0) -> list[str]:
    """Return ``n`` prompts from ``dataset``, chosen and ordered deterministically by ``seed``.

    The order comes from ``random.Random(seed)`` shuffling the record indices, so the
    same ``(dataset, n, seed)`` gives the same prompts in every process, and a smaller
    ``n`` is always a prefix of a larger one with the same seed.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(
            f"n_prompts must be a whole number of at least 1, got {n!r}",
            field="n_prompts",
        )
    texts = _dataset_texts(dataset)
    if n > len(texts):
        raise ConfigError(
            f"n_prompts={n} but dataset {dataset!r} has only {len(texts)} prompts "
            "(one per non-blank line)",
            field="n_prompts",
            fix=f"set n_prompts to {len(texts)} or fewer, or use a larger dataset",
        )
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    return [texts[i] for i in order[:n]]


def check_dataset(dataset: str, n_prompts: int) -> None:
    """Read ``dataset`` as an experiment would and check it holds ``n_prompts`` prompts:
    a ``ConfigError`` naming the file, the line and the fix, before any experiment runs."""
    load_prompts(dataset, n_prompts)


def read_jsonl_prompts(path: str | Path) -> list[str]:
    """Read prompt texts from a user ``.jsonl`` file, one record per line.

    A record is a JSON object or a bare JSON string. The text field is picked once
    per file from the first object record: the first of ``TEXT_FIELDS`` it has.
    Blank lines are skipped.
    """
    texts, _ = _read_jsonl(Path(path))
    return texts


def dataset_info(dataset: str) -> dict[str, Any]:
    """Describe a dataset: name, prompt count, source, and task counts (built-ins) or text field."""
    if dataset in BUILTIN_DATASETS:
        records = _builtin_records(dataset)
        tasks = Counter(r["task"] for r in records)
        return {
            "name": dataset,
            "count": len(records),
            "source": "builtin",
            "tasks": dict(sorted(tasks.items())),
        }
    path = _as_path(dataset)
    texts, field = _read_jsonl(path)
    return {"name": dataset, "count": len(texts), "source": str(path), "field": field}


def _dataset_texts(dataset: str) -> tuple[str, ...] | list[str]:
    if dataset in BUILTIN_DATASETS:
        return _builtin_texts(dataset)
    texts, _ = _read_jsonl(_as_path(dataset))
    return texts


def _as_path(dataset: str) -> Path:
    """Treat ``dataset`` as a file path if it looks like one, else reject it as an unknown name."""
    path = Path(dataset).expanduser()
    looks_like_path = dataset.endswith(".jsonl") or "/" in dataset or "\\" in dataset
    if looks_like_path or path.exists():
        return path
    known = ", ".join(repr(name) for name in sorted(BUILTIN_DATASETS))
    raise ConfigError(
        f"no dataset named {dataset!r}; known: {known}, or give a path to a .jsonl file",
        field="dataset",
    )


@cache
def _builtin_records(name: str) -> tuple[dict[str, str], ...]:
    """Parse a built-in dataset once per process; callers must not mutate the records."""
    resource = resources.files(__name__).joinpath(BUILTIN_DATASETS[name])
    records = []
    for line in resource.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            records.append({"id": record["id"], "task": record["task"], "prompt": record["prompt"]})
    return tuple(records)


@cache
def _builtin_texts(name: str) -> tuple[str, ...]:
    return tuple(r["prompt"] for r in _builtin_records(name))


def _read_jsonl(path: Path) -> tuple[list[str], str | None]:
    """Parse a user ``.jsonl`` file into texts plus the object field used (None if all strings)."""
    if path.suffix.lower() != ".jsonl":
        raise ConfigError(
            f"dataset file {str(path)!r} is not a .jsonl file",
            field="dataset",
            fix="give a .jsonl file with one JSON object (or string) per line",
        )
    if not path.is_file():
        raise ConfigError(
            f"dataset file {str(path)!r} not found",
            field="dataset",
            fix="give the path of an existing .jsonl file",
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"dataset file {str(path)!r} could not be read as UTF-8 text: {exc}",
            field="dataset",
            fix="save the file as UTF-8 text, one JSON record per line",
        ) from exc

    texts: list[str] = []
    field: str | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"dataset file {str(path)!r}, line {lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{where}: not valid JSON ({exc.msg})", field="dataset", fix=_LINE_FIX
            ) from exc
        if isinstance(record, dict):
            if field is None:
                field = _detect_field(record, where)
            text = record.get(field)
            if not isinstance(text, str):
                raise ConfigError(
                    f"{where}: no text in field {field!r} "
                    f"(chosen from the first record; keys here: {sorted(record)})",
                    field="dataset",
                    fix=f"give every record a {field!r} string, as the first one has",
                )
        elif isinstance(record, str):
            text = record
        else:
            raise ConfigError(
                f"{where}: expected a JSON object or string, got {type(record).__name__}",
                field="dataset",
                fix=_LINE_FIX,
            )
        if not text.strip():
            raise ConfigError(
                f"{where}: the prompt text is empty",
                field="dataset",
                fix="remove that line or give it a prompt",
            )
        texts.append(text)

    if not texts:
        raise ConfigError(
            f"dataset file {str(path)!r} is empty (no records)", field="dataset", fix=_LINE_FIX
        )
    return texts, field


def _detect_field(record: dict[str, Any], where: str) -> str:
    for name in TEXT_FIELDS:
        if name in record:
            return name
    raise ConfigError(
        f"{where}: no recognised text field; keys found: {sorted(record)}; "
        f"accepted: {', '.join(TEXT_FIELDS)}",
        field="dataset",
        fix=f"name each record's text with one of: {', '.join(TEXT_FIELDS)}",
    )
