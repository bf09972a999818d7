"""SIGTERM (a scheduler, ``docker stop``, ``kill``) ends ``llem-nb run`` as Ctrl-C does: the
running experiment is stopped and journaled ``interrupted``, its child process killed, temp
dirs removed; the exit code is 143.

The study runs in a child process that leads its own session; only that pid is signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.cli.test_run import write_study
from tests.support.faultkit import alive

from llem_nb.cli import EXIT_TERMINATED
from llem_nb.config.plugins import plugin_env


def _wait_for_pid(pidfile: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if pidfile.is_file() and pidfile.read_text().strip():
            return int(pidfile.read_text().split()[0])
        time.sleep(0.05)
    raise AssertionError(f"the experiment never started (study rc={proc.poll()})")


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.mark.parametrize("reuse", ["auto", "never"])
def test_sigterm_journals_interrupted_kills_the_worker_and_exits_143(
    fake_backend: str, tmp_path: Path, reuse: str
) -> None:
    study = write_study(tmp_path / "study.yaml", fake_backend, max_output_tokens=4000)
    text = study.read_text() + f"reuse: {reuse}\n"
    study.write_text(text)
    temp, out, pidfile = tmp_path / "tmp", tmp_path / "out", tmp_path / "pids"
    temp.mkdir()
    env = {
        **os.environ,
        **plugin_env(),
        "TMPDIR": str(temp),
        "LLEM_FAKE_STEP_S": "0.05",
        "LLEM_FAKE_PIDFILE": str(pidfile),
    }
    command = [sys.executable, "-m", "llem_nb.cli", "run", str(study)]
    command += ["--runner", "subprocess", "--results-dir", str(out)]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    worker = 0
    try:
        worker = _wait_for_pid(pidfile, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        for pid in (proc.pid, worker):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == EXIT_TERMINATED, stderr.decode()
    assert "terminated" in stderr.decode()
    (study_dir,) = out.iterdir()
    lines = [json.loads(x) for x in (study_dir / "journal.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines if "config_hash" in x][-1] == "interrupted"
    assert lines[-1]["event"] == "session" and lines[-1]["interrupted"] is True
    assert _wait_gone(worker), f"experiment process {worker} outlived the study"
    assert sorted(p.name for p in temp.iterdir()) == []
    assert not list(study_dir.glob("*.result.json"))
