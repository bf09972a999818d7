"""The study journal: ``journal.jsonl``, one JSON line per state change, append-only.

Each (config_hash, cycle) pair moves queued → started → finished | failed |
interrupted; a study's state is what replaying the lines gives. Appending is O(1)
(the file stays open, one ``os.write`` per line, so a line is never interleaved or
half-written by this process). A crash mid-write can still leave a torn last line:
replay ignores it with a warning, and the next writer starts on a fresh line.

Durability: terminal lines (finished, failed) are fsync'd, grouped so that at most
one fsync happens per ``sync_interval_s`` (1 s); ``interrupted`` lines, written as a run
stops, and the batch that queues a run's pairs are fsync'd at once. Real experiments take
longer than that, so in practice every terminal line is fsync'd; sub-second no-op
experiments share one fsync. A line lost to a power cut costs at most a rerun:
resume verifies every result file and never trusts the journal alone.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llem_nb.errors import LlemWarning

JOURNAL_NAME = "journal.jsonl"
PAIR_EVENTS = ("queued", "started", "finished", "failed", "interrupted")
TERMINAL = frozenset({"finished", "failed", "interrupted"})
ALWAYS_SYNCED = frozenset({"interrupted"})
"""Written as a run stops (a signal, a dying child): fsync'd at once, whatever the interval."""
SESSION = "session"
"""A line without a pair: a run began or ended (``phase``: open, close)."""

PairKey = tuple[str, int]


class JournalWarning(LlemWarning):
    """A journal line was unreadable (ignored) or a journal write failed (study goes on)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class PairState:
    """The latest state of one (config_hash, cycle) pair, from the journal."""

    config_hash: str
    experiment_id: str
    cycle: int
    state: str
    ts: str = ""
    category: str | None = None
    starts: int = 0


@dataclass
class JournalState:
    """What replaying a journal gives: each pair's latest state, sessions, ignored lines."""

    pairs: dict[PairKey, PairState] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    ignored_lines: int = 0

    def get(self, config_hash: str, cycle: int) -> PairState | None:
        return self.pairs.get((config_hash, cycle))

    def counts(self) -> dict[str, int]:
        """Pairs per latest state."""
        out: dict[str, int] = {}
        for pair in self.pairs.values():
            out[pair.state] = out.get(pair.state, 0) + 1
        return out


def replay(path: str | os.PathLike[str]) -> JournalState:
    """Fold the journal's lines into the latest state per pair; a missing journal is empty."""
    state = JournalState()
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return state
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail.strip():
        warnings.warn(
            f"{path}: ignored a torn last line ({len(tail)} bytes; a crash mid-write)",
            JournalWarning,
            stacklevel=2,
        )
        state.ignored_lines += 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            _apply(state, record)
        except (ValueError, TypeError, KeyError) as exc:
            warnings.warn(
                f"{path}: ignored unreadable line {number} ({exc.__class__.__name__}: {exc})",
                JournalWarning,
                stacklevel=2,
            )
            state.ignored_lines += 1
    return state


def _apply(state: JournalState, record: Any) -> None:
    if not isinstance(record, dict):
        raise TypeError("a journal line must be a JSON object")
    event = record["event"]
    if event == SESSION:
        state.sessions.append(record)
        return
    if event not in PAIR_EVENTS:
        raise ValueError(f"unknown event {event!r}")
    key = (str(record["config_hash"]), int(record["cycle"]))
    pair = state.pairs.get(key)
    if pair is None:
        pair = state.pairs[key] = PairState(key[0], str(record["experiment_id"]), key[1], event)
    pair.state = event
    pair.ts = str(record.get("ts", ""))
    pair.category = record.get("category")
    pair.starts += event == "started"


class Journal:
    """An open ``journal.jsonl``: ``append`` one event, ``append_many`` a batch (one write)."""

    def __init__(self, path: str | os.PathLike[str], *, sync_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.sync_interval_s = sync_interval_s
        self._last_sync = float("-inf")
        self._warned = False
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._seal_torn_tail()

    def _seal_torn_tail(self) -> None:
        """After a crash mid-line, start on a new line so the next event stays readable."""
        size = os.fstat(self._fd).st_size if self._fd is not None else 0
        if size:
            with open(self.path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    self._write(b"\n")

    def sync_due(self) -> bool:
        """True when the last fsync is ``sync_interval_s`` old: this event's writes sync."""
        return time.monotonic() - self._last_sync >= self.sync_interval_s

    def append(
        self,
        event: str,
        *,
        config_hash: str | None = None,
        experiment_id: str | None = None,
        cycle: int | None = None,
        sync: bool | None = None,
        **extra: Any,
    ) -> None:
        """Write one line. ``sync``: True forces an fsync, None fsyncs ``interrupted`` always
        and other terminal events when due."""
        record: dict[str, Any] = {"ts": _now(), "event": event}
        if config_hash is not None:
            record.update(config_hash=config_hash, experiment_id=experiment_id, cycle=cycle)
        record.update(extra)
        self._write(_line(record))
        due = event in ALWAYS_SYNCED or (event in TERMINAL and self.sync_due())
        if sync or (sync is None and due):
            self.sync()

    def append_many(self, records: Iterable[Mapping[str, Any]], *, sync: bool = True) -> None:
        """Several pair events in one write (the queue at the start of a run)."""
        ts = _now()
        data = b"".join(_line({"ts": ts, **r}) for r in records)
        if data:
            self._write(data)
            if sync:
                self.sync()

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError(f"journal {self.path} is closed")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._warn(exc)

    def sync(self) -> None:
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._warn(exc)
        self._last_sync = time.monotonic()

    def _warn(self, exc: OSError) -> None:
        """A journal that cannot be written must not stop the study: results still land."""
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"could not write the journal {self.path}: {exc.strerror or exc}; the study "
                "goes on, and resume will rely on the result files",
                JournalWarning,
                stacklevel=4,
            )

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
