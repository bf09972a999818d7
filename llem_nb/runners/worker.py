"""A worker process that runs experiments one after another, keeping the model loaded between them.

The subprocess runner in a study with ``reuse="auto"`` keeps one worker alive per load key
(``llem_nb.backends.base.load_identity``) instead of starting a process per experiment: the
model, its warm state and a recent idle baseline stay in the worker (a ``ModelKeeper``).

Protocol, one line each way per experiment. The parent writes the path of an exchange
dir's ``{hash}_config.json`` to the worker's stdin; the worker runs the Harness, writes
``{hash}_result.json`` (and the timeseries) or ``{hash}_error.json`` beside it, then
answers ``{"done": <path>, "ok": <bool>}`` on its original stdout. Whatever else the
process prints (engine logs) goes to stderr, the worker's log. EOF on stdin: the worker
frees the model and exits 0. A worker that dies, or runs past an experiment's timeout, is
killed with its process group; the next experiment starts a new one.

    python -m llem_nb.runners.worker     (started by ``SubprocessRunner``, not by hand)
    python -m llem_nb.runners.worker --fifo REQUESTS REPLIES     (in a reused container: the
        same lines through two named pipes in the mounted exchange dir; ``DockerRunner``)
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from llem_nb.runners.exchange import read_request, write_json

WORKER_MODULE = "llem_nb.runners.worker"
CLOSE_WAIT_S = 30.0
"""How long a worker that is told to stop may take to free its model before it is killed."""


# --------------------------------------------------------------------------- child side


def run_one(config_path: Path, keeper: Any) -> bool:
    """One experiment from its exchange dir, the model taken from and left in ``keeper``."""
    config_hash = config_path.name.removesuffix("_config.json")
    try:
        from llem_nb.measure.harness import Harness  # noqa: PLC0415 - a failure to import is caught and reported here
        from llem_nb.results.timeseries import save_timeseries  # noqa: PLC0415 - a failure to import is caught and reported here

        config, cycle, study = read_request(config_path)
        result = Harness(keeper=keeper).run(config, cycle=cycle, study=study)
        result_path = config_path.with_name(f"{config_hash}_result.json")
        save_timeseries(result, result_path)
        write_json(result_path, result.model_dump(mode="json"))
        return True
    except BaseException as exc:
        from llem_nb.results.schema import ErrorInfo  # noqa: PLC0415 - needed only on the error path

        error_path = config_path.with_name(f"{config_hash}_error.json")
        write_json(error_path, ErrorInfo.from_exception(exc).model_dump(mode="json"))
        print(f"llem_nb worker: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        if not isinstance(exc, Exception):
            raise
        return False


def serve(requests: IO[str], replies: IO[str]) -> int:
    """Answer requests until EOF; the kept model is freed on the way out."""
    from llem_nb.measure.reuse import ModelKeeper  # noqa: PLC0415 - container/worker start-up stays minimal

    keeper = ModelKeeper()
    try:
        for line in requests:
            path = line.strip()
            if not path:
                continue
            ok = run_one(Path(path), keeper)
            replies.write(json.dumps({"done": path, "ok": ok}) + "\n")
            replies.flush()
    finally:
        keeper.release()
    return 0


def main(argv: list[str] | None = None) -> None:
    """Serve, then leave at once: the model is freed and every file written and closed, so
    the interpreter's own teardown (seconds with torch loaded) is skipped."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--fifo"] and len(args) == 3:
        with open(args[1], encoding="utf-8") as requests:
            replies = open(args[2], "w", buffering=1, encoding="utf-8")  # noqa: SIM115
            code = serve(requests, replies)
    else:
        replies = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)
        code = serve(sys.stdin, replies)
    replies.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --------------------------------------------------------------------------- parent side


@dataclass
class Reply:
    """The worker's answer to one request; ``ok`` False: an error file was written."""

    ok: bool


class WorkerTimeout(Exception):
    """No answer before the deadline; the worker has been killed."""


class Worker:
    """A live worker child, seen from the runner: ``ask``, ``kill``, ``close``.

    ``identity`` (the load identity it serves) and ``env`` (the environment it started
    with) tell the runner whether the next experiment may go to it.
    """

    def __init__(self, python: str, identity: Any, env: dict[str, str]) -> None:
        self.identity = identity
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="llem-worker-"))
        self.log_path = self.dir / "worker.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open as long as the worker lives
        try:
            self.proc = subprocess.Popen(
                [python, "-m", WORKER_MODULE],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self._buffer = b""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def ask(self, config_path: Path, timeout_s: float | None, log_to: Path) -> Reply | None:
        """Run one experiment; its reply, or None when the worker died first.

        Raises ``WorkerTimeout`` (worker killed) past ``timeout_s``. What the worker logged
        meanwhile is copied to ``log_to``, whatever happens.
        """
        offset = self.log_path.stat().st_size
        try:
            reply = self._ask(config_path, timeout_s)
        except BaseException:
            self._copy_log(offset, log_to)
            self.kill()
            raise
        if reply is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5.0)
        self._copy_log(offset, log_to)
        return reply

    def _ask(self, config_path: Path, timeout_s: float | None) -> Reply | None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(f"{config_path}\n".encode())
            stdin.flush()
        except OSError:
            return None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        line = self._read_line(deadline)
        if line is None:
            return None
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        return Reply(ok=bool(answer.get("ok")))

    def _read_line(self, deadline: float | None) -> bytes | None:
        """The next line the worker answers; None at EOF (it died)."""
        stdout = self.proc.stdout
        assert stdout is not None
        fd = stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise WorkerTimeout
                if not selector.select(wait):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _copy_log(self, offset: int, target: Path) -> None:
        with contextlib.suppress(OSError):
            self._log.flush()
            with open(self.log_path, "rb") as src, open(target, "ab") as dst:
                src.seek(offset)
                shutil.copyfileobj(src, dst)

    def kill(self) -> int:
        """Kill the worker and everything it spawned (it leads its own process group, which
        outlives it while an engine's helper processes do); its exit code."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        self._cleanup()
        return code

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Ask the worker to free its model and exit (EOF on stdin); kill it if it lingers."""
        if self.proc.poll() is None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait_s)
        self.kill()

    def _cleanup(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError):
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
