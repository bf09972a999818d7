"""The journal (append, replay, torn lines, fsync policy, write errors) and the study-dir lock."""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llem_nb.run.journal import Journal, JournalWarning, PairState, replay
from llem_nb.run.lock import StudyLock, StudyLocked

A = {"config_hash": "a" * 64, "experiment_id": "a" * 12}
B = {"config_hash": "b" * 64, "experiment_id": "b" * 12}


def test_replay_folds_events_into_latest_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.append("session", phase="open", pid=1)
        j.append_many([{"event": "queued", **A, "cycle": c} for c in (0, 1)])
        j.append_many([{"event": "queued", **B, "cycle": 0}])
        j.append("started", **A, cycle=0)
        j.append("finished", **A, cycle=0)
        j.append("started", **A, cycle=1)
        j.append("failed", **A, cycle=1, category="timeout")
        j.append("started", **B, cycle=0)
        j.append("interrupted", **B, cycle=0)
    state = replay(path)
    assert state.get(A["config_hash"], 0).state == "finished"
    failed = state.get(A["config_hash"], 1)
    assert (failed.state, failed.category, failed.starts) == ("failed", "timeout", 1)
    assert state.get(B["config_hash"], 0).state == "interrupted"
    assert state.counts() == {"finished": 1, "failed": 1, "interrupted": 1}
    assert [s["phase"] for s in state.sessions] == ["open"]
    assert state.ignored_lines == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all("ts" in line and "event" in line for line in lines)
    assert lines[-1]["experiment_id"] == B["experiment_id"] and lines[-1]["cycle"] == 0


def test_missing_journal_replays_empty(tmp_path: Path) -> None:
    state = replay(tmp_path / "nope.jsonl")
    assert state.pairs == {} and state.sessions == []


def test_torn_last_line_is_ignored_and_the_next_writer_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.append("started", **A, cycle=0)
    with open(path, "ab") as fh:
        fh.write(b'{"ts":"x","event":"finished","config_hash":"aaa')
    with pytest.warns(JournalWarning, match="torn last line"):
        state = replay(path)
    assert state.get(A["config_hash"], 0).state == "started"
    with Journal(path) as j:
        j.append("finished", **A, cycle=0)
    with pytest.warns(JournalWarning, match="unreadable line 2"):
        state = replay(path)
    assert state.get(A["config_hash"], 0).state == "finished"
    assert state.ignored_lines == 1


def test_unknown_events_and_non_objects_are_warned_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('[1, 2]\n{"event": "exploded"}\n{"event": "started"}\n')
    with pytest.warns(JournalWarning) as record:
        state = replay(path)
    assert len(record) == 3 and state.ignored_lines == 3 and not state.pairs


def test_fsync_policy_groups_terminal_lines(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    j = Journal(tmp_path / "journal.jsonl", sync_interval_s=3600)
    j.append("started", **A, cycle=0)
    assert synced == []
    j.append("finished", **A, cycle=0)
    assert len(synced) == 1
    j.append("finished", **A, cycle=1)
    assert len(synced) == 1
    j.append("interrupted", **A, cycle=2, sync=True)
    assert len(synced) == 2
    j.close()
    assert len(synced) == 3
    every = Journal(tmp_path / "every.jsonl", sync_interval_s=0)
    synced.clear()
    for c in range(3):
        every.append("finished", **A, cycle=c)
    assert len(synced) == 3
    every.close()


def test_a_failing_journal_write_warns_once_and_the_caller_goes_on(
    tmp_path: Path, monkeypatch
) -> None:
    j = Journal(tmp_path / "journal.jsonl")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.warns(JournalWarning, match="No space left") as record:
        j.append("started", **A, cycle=0)
        j.append("finished", **A, cycle=0)
    assert len(record) == 1
    monkeypatch.undo()
    j.close()


def test_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    first = StudyLock(tmp_path).acquire()
    with pytest.raises(StudyLocked) as info:
        StudyLock(tmp_path).acquire()
    assert str(tmp_path) in info.value.message
    assert f"pid {os.getpid()}" in info.value.message
    assert "wait for that run" in info.value.fix
    again = pickle.loads(pickle.dumps(info.value))
    assert again.message == info.value.message and again.fix == info.value.fix
    first.release()
    with StudyLock(tmp_path) as lock:
        assert lock.held
    assert not lock.held


def test_lock_held_by_another_process_fails_fast_and_dies_with_it(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from llem_nb.run.lock import StudyLock\n"
        f"StudyLock({str(tmp_path)!r}).acquire()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(StudyLocked, match=f"pid {child.pid}"):
            StudyLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()
    with StudyLock(tmp_path) as lock:
        assert lock.held


def test_an_interrupted_line_is_fsynced_even_inside_the_interval(
    tmp_path: Path, monkeypatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    j = Journal(tmp_path / "journal.jsonl", sync_interval_s=3600)
    j.append("finished", **A, cycle=0)
    assert len(synced) == 1
    j.append("interrupted", **A, cycle=1)
    assert len(synced) == 2
    j.append("started", **B, cycle=0, sync=None)
    j.append("failed", **B, cycle=0)
    assert len(synced) == 2
    j.close()


def test_the_queue_batch_is_one_fsynced_write(tmp_path: Path, monkeypatch) -> None:
    writes: list[bytes] = []
    synced: list[int] = []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(
        os, "write", lambda fd, data: (writes.append(bytes(data)), real_write(fd, data))[1]
    )
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    j = Journal(tmp_path / "journal.jsonl", sync_interval_s=3600)
    j.append_many([{"event": "queued", **A, "cycle": c} for c in range(3)])
    assert len(writes) == 1 and writes[0].count(b"\n") == 3
    assert len(synced) == 1
    j.append_many([])
    assert len(writes) == 1 and len(synced) == 1
    j.close()
    assert [p.state for p in replay(tmp_path / "journal.jsonl").pairs.values()] == ["queued"] * 3


def _called_here(filename: str) -> bool:
    """A warning names this test's line. Under mutmut (``make mutation``) its trampolines add
    frames, so there the frame cannot be checked (mk/mutation-equivalent.txt lists why)."""
    return filename == __file__ or "mutmut" in sys.modules


def test_replay_keeps_every_field_of_the_latest_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(
        '{"ts":"t1","event":"queued","config_hash":"h","experiment_id":"e","cycle":3}\n'
        "\n"
        '{"ts":"t2","event":"started","config_hash":"h","experiment_id":"e","cycle":3}\n'
        '{"event":"failed","config_hash":"h","experiment_id":"e","cycle":3,"category":"oom"}\n'
        '{"ts":"t4","event":"finished","config_hash":"g","experiment_id":"f","cycle":0}\n'
        '{"ts":"t5","event":"finished","config_hash":"g","experiment_id":"f","cycle":1}\n'
    )
    state = replay(path)
    assert state.get("h", 3) == PairState("h", "e", 3, "failed", ts="", category="oom", starts=1)
    assert state.get("g", 0) == PairState("g", "f", 0, "finished", ts="t4", category=None)
    assert state.counts() == {"failed": 1, "finished": 2}
    assert state.ignored_lines == 0


def test_unreadable_lines_are_counted_and_named_where_replay_was_called(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('[1, 2]\n{"event": "exploded"}\n\n{"ts":"x","event":"session"}\n{"ev')
    with pytest.warns(JournalWarning) as record:
        state = replay(path)
    messages = [str(w.message) for w in record]
    assert messages[0] == f"{path}: ignored a torn last line (4 bytes; a crash mid-write)"
    assert messages[1] == (
        f"{path}: ignored unreadable line 1 (TypeError: a journal line must be a JSON object)"
    )
    assert (
        messages[2] == f"{path}: ignored unreadable line 2 (ValueError: unknown event 'exploded')"
    )
    assert all(_called_here(w.filename) for w in record)
    assert state.ignored_lines == 3 and len(state.sessions) == 1


def test_lines_are_compact_json_in_utc_and_stringify_what_json_cannot(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.append("session", phase="open", where=tmp_path)
        j.append_many([{"event": "queued", **A, "cycle": c} for c in (0, 1)])
    raw = path.read_bytes().splitlines()
    assert all(b", " not in line and b'": ' not in line for line in raw)
    lines = [json.loads(line) for line in raw]
    assert lines[0]["where"] == str(tmp_path)
    assert lines[0]["ts"].endswith("+00:00")
    assert isinstance(lines[1]["ts"], str) and lines[1]["ts"] == lines[2]["ts"]


def test_journal_defaults_mode_and_reopening_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    old_umask = os.umask(0o022)
    try:
        j = Journal(path)
    finally:
        os.umask(old_umask)
    assert j.sync_interval_s == 1.0
    assert path.stat().st_mode & 0o777 == 0o644
    j.append("started", **A, cycle=0)
    j.close()
    j.close()
    before = path.read_bytes()
    Journal(path).close()
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match=r"journal .*journal\.jsonl is closed"):
        j.append("finished", **A, cycle=0)


def test_a_failing_fsync_warns_with_the_reason_at_the_callers_line(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.warns(JournalWarning) as record:
        j.append("finished", **A, cycle=0)
    assert str(record[0].message) == (
        f"could not write the journal {path}: Input/output error; the study goes on, and "
        "resume will rely on the result files"
    )
    assert _called_here(record[0].filename)
    monkeypatch.undo()
    j.close()


def test_a_zero_interval_syncs_every_terminal_line_even_at_one_instant(
    tmp_path: Path, monkeypatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr(time, "monotonic", lambda: 100.0)
    j = Journal(tmp_path / "journal.jsonl", sync_interval_s=0)
    j.append("finished", **A, cycle=0)
    j.append("finished", **A, cycle=1)
    assert len(synced) == 2
    monkeypatch.undo()
    j.close()
