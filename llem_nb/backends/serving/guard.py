"""The server guard: runs a server command and takes it down with the process that asked.

``python -m llem_nb.backends.serving.guard <parent pid> -- <command…>`` starts the command
in its own process group, then waits. When the parent (the experiment process) is gone —
even SIGKILLed, which no handler in it could catch — or the guard gets SIGTERM/SIGINT, it
sends SIGTERM to that group only (the one it created), SIGKILL after ``GRACE_S``, and exits
with the server's status. When the server exits by itself, the guard exits with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

GRACE_S = 15.0
POLL_S = 0.2


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = GRACE_S) -> int:
    """SIGTERM the group ``proc`` leads, SIGKILL it after ``grace_s``; the exit status."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
    code = proc.poll()
    return code if code is not None else -9


def guard(parent: int, command: list[str]) -> int:
    proc = subprocess.Popen(command, start_new_session=True)
    stopping = {"asked": False}

    def ask(_sig: int, _frame: object) -> None:
        stopping["asked"] = True

    signal.signal(signal.SIGTERM, ask)
    signal.signal(signal.SIGINT, ask)
    while True:
        code = proc.poll()
        if code is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the server's own leftovers, if any
            return code
        if stopping["asked"] or os.getppid() != parent:
            return stop_group(proc)
        time.sleep(POLL_S)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m llem_nb.backends.serving.guard <parent pid> -- <command…>")
        return 2
    return guard(int(argv[0]), argv[2:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
