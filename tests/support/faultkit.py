"""Helpers shared by the journal, resume and fault tests: studies, snapshots, invariants."""

from __future__ import annotations

import errno
import json
import os
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llem_nb.results.frame import load_results
from llem_nb.run.journal import JOURNAL_NAME, replay
from llem_nb.study.study import Study
from tests.support.fake import fake_fields

Pair = tuple[str, int]


def fake_study(backend: str, name: str = "faults", sizes=(1, 2, 3), cycles: int = 2, **extra):
    fields = fake_fields(backend, **{"baseline": {"seconds": 0}, **extra})
    return Study(name, **fields).sweep(batch_size=list(sizes)).cycles(cycles)


def refuse_publishing(
    monkeypatch: pytest.MonkeyPatch, refuse: Callable[[str, list[str]], bool]
) -> list[str]:
    """``os.link`` (how a result file is published) fails with EACCES where
    ``refuse(source, published so far)``; returns the list of what was published."""
    real_link = os.link
    published: list[str] = []

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if refuse(str(src), published):
            raise PermissionError(errno.EACCES, "Permission denied")
        real_link(src, dst, *args, **kwargs)
        published.append(str(dst))

    monkeypatch.setattr(os, "link", link)
    return published


def all_pairs(study: Study) -> set[Pair]:
    return {(p.config.experiment_id, c) for p in study.points for c in range(study.config.cycles.n)}


def result_files(study_dir: Path) -> dict[Pair, bytes]:
    """Bytes of every published result, by (experiment_id, cycle)."""
    out: dict[Pair, bytes] = {}
    for path in sorted(study_dir.glob("*.result.json")):
        stem = path.name.removesuffix(".result.json")
        experiment_id, _, cycle = stem.rpartition("_c")
        out[(experiment_id, int(cycle))] = path.read_bytes()
    return out


def journal_states(study_dir: Path) -> dict[Pair, str]:
    """Latest journal state per (experiment_id, cycle); fails on any unreadable line."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = replay(study_dir / JOURNAL_NAME)
    return {(p.experiment_id, p.cycle): p.state for p in state.pairs.values()}


def failure_categories(study_dir: Path) -> dict[Pair, str | None]:
    """The failure category of every failed pair: from its result file, else its journal line."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = replay(study_dir / JOURNAL_NAME)
    out = {
        (p.experiment_id, p.cycle): p.category for p in state.pairs.values() if p.state == "failed"
    }
    for pair, data in result_files(study_dir).items():
        record = json.loads(data)
        if record["status"] == "failed":
            out[pair] = record["error"]["category"]
    return out


def loads_cleanly(study_dir: Path) -> int:
    """Rows load_results reads, with no file skipped."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return len(load_results(study_dir))


class StartedLog:
    """A progress callback recording which (experiment_id, cycle) pairs started."""

    def __init__(self) -> None:
        self.started: list[Pair] = []
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        if event.kind == "started":
            self.started.append((event.experiment_id, event.cycle))


EXPERIMENT_MODULES = (b"llem_nb.runners.entrypoint", b"llem_nb.runners.worker")


def entrypoint_children() -> list[int]:
    """Pids of this process's children running experiments: the entrypoint (one per
    experiment) or a worker (one per load key) (Linux /proc)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        runs_experiments = any(m in cmd for m in EXPERIMENT_MODULES)
        if int(fields[1]) == me and runs_experiments and fields[0] != "Z":
            found.append(int(entry))
    return found


def wait_for_child(timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = entrypoint_children()
        if pids:
            return pids[0]
        time.sleep(0.02)
    raise AssertionError("no experiment child process appeared")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_later(pid_source, sig: int = signal.SIGKILL, delay_s: float = 0.3) -> None:
    """In a thread: wait for a pid from ``pid_source()``, sleep, then signal it."""
    import threading

    def go() -> None:
        pid = pid_source()
        time.sleep(delay_s)
        os.kill(pid, sig)

    threading.Thread(target=go, daemon=True).start()
