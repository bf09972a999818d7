"""One container per loaded model: the Docker runner with ``reuse="auto"``.

A kept container runs ``python -m llem_nb.runners.worker --fifo`` (the library, as the
subprocess worker does), its private dir mounted at ``/run/llem``. The dir holds two named
pipes — one request line in (a config path), one reply line out — and one exchange dir
per experiment (``{hash}_config.json`` in, ``{hash}_result.json`` or ``_error.json``
out). A watcher thread waits on the container and writes ``{"exited": code}`` into the
reply pipe, so a container that dies wakes the host at once instead of at the timeout.

The container serves the experiments whose identity (load key, image, everything the
container is given) is equal; another identity, a failure, a timeout, ``cancel`` or
``release`` removes it, and the next experiment starts a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.docker.classify import Failure, classify
from llem_nb.runners.docker.container import remove_container
from llem_nb.runners.docker.errors import ContainerError
from llem_nb.runners.exchange import Exchange
from llem_nb.runners.worker import WORKER_MODULE, Reply, WorkerTimeout

CONTAINER_DIR = "/run/llem"
REQUESTS = "requests"
REPLIES = "replies"
REUSE_LABEL = "org.llem-nb.reused"


class DockerRunner(Protocol):
    """What ``Reuse`` uses of the Docker runner (which imports this module)."""

    @property
    def client(self) -> Any: ...
    def identity(self, config: ExperimentConfig) -> Any: ...
    def shared_kwargs(self, config: ExperimentConfig) -> dict[str, Any]: ...
    def failure_for(self, config: ExperimentConfig, exchange: Exchange | None) -> Failure: ...
    def image_attrs(self, config: ExperimentConfig, failure: Failure) -> dict[str, Any]: ...


def worker_command(python: str) -> list[str]:
    """The kept container's command: the worker reading and answering through the pipes."""
    pipes = [f"{CONTAINER_DIR}/{REQUESTS}", f"{CONTAINER_DIR}/{REPLIES}"]
    return [python, "-m", WORKER_MODULE, "--fifo", *pipes]


def image_python(attrs: dict[str, Any]) -> str | None:
    """The interpreter an llem_nb image runs its entrypoint with (None: not such an image)."""
    cmd = (attrs.get("Config") or {}).get("Cmd") or []
    if len(cmd) >= 3 and cmd[-2:] == ["-m", "llem_nb.runners.entrypoint"]:
        return str(cmd[0])
    return None


class KeptContainer:
    """A started container serving one identity; ``ask`` one experiment at a time."""

    def __init__(self, identity: Any, inside: str | None = CONTAINER_DIR) -> None:
        """``inside``: where the dir is mounted in the container (None: the worker runs on
        this machine and sees the dir at its own path)."""
        self.identity = identity
        self.inside = inside
        self.dir = Path(tempfile.mkdtemp(prefix="llem-container-"))
        os.chmod(self.dir, 0o700)
        os.mkfifo(self.dir / REQUESTS, 0o600)
        os.mkfifo(self.dir / REPLIES, 0o600)
        self._requests = os.open(self.dir / REQUESTS, os.O_RDWR)
        self._replies = os.open(self.dir / REPLIES, os.O_RDWR | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._closed = False
        self._buffer = b""
        self.exit_code: int | None = None
        self.container: Any = None

    def start(self, client: Any, kwargs: dict[str, Any]) -> None:
        """Create and start the container (``kwargs`` as for ``containers.create``), and
        the thread that reports its exit."""
        self.container = client.containers.create(**kwargs)
        self.container.start()
        threading.Thread(target=self._watch, args=(client,), daemon=True).start()

    def _watch(self, client: Any) -> None:
        code = -1
        with contextlib.suppress(Exception):
            code = int(client.api.wait(self.container.id).get("StatusCode", -1))
        with self._lock:
            if not self._closed:
                self.exit_code = code
                with contextlib.suppress(OSError):
                    os.write(self._replies, json.dumps({"exited": code}).encode() + b"\n")

    def container_path(self, host_path: Path) -> str:
        """Where a file under this container's dir is seen inside the container."""
        if self.inside is None:
            return str(host_path)
        return f"{self.inside}/{host_path.relative_to(self.dir).as_posix()}"

    def ask(self, config_path: Path, timeout_s: float | None) -> Reply | None:
        """Run one experiment; its reply, None when the container exited first, or
        ``WorkerTimeout`` past ``timeout_s`` (the caller removes the container)."""
        os.write(self._requests, (self.container_path(config_path) + "\n").encode())
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self._replies, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise WorkerTimeout
                if selector.select(wait):
                    with contextlib.suppress(BlockingIOError):
                        self._buffer += os.read(self._replies, 65536)
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        if "done" not in answer:
            return None
        return Reply(ok=bool(answer.get("ok")))

    def logs(self) -> str:
        """What the container printed so far (engine logs, the worker's errors)."""
        try:
            return str(self.container.logs(stdout=True, stderr=True).decode("utf-8", "replace"))
        except Exception:  # a vanished container has no logs; the error file may say why
            return ""

    def oom_killed(self) -> bool:
        with contextlib.suppress(Exception):
            self.container.reload()
            return bool(self.container.attrs.get("State", {}).get("OOMKilled"))
        return False

    def close(self, *, keep_files: bool = False) -> None:
        """Remove the container; delete its dir unless a failed experiment's files are in it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.container is not None:
            remove_container(self.container)
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        if keep_files:
            for pipe in (REQUESTS, REPLIES):
                with contextlib.suppress(OSError):
                    (self.dir / pipe).unlink()
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Reuse:
    """The Docker runner's kept container (at most one) and the experiment announced next.

    An experiment goes to a kept container when one serves its identity, or when the
    experiment announced next (``prepare``) shares it; otherwise (a single experiment, a
    model that changes every point, an image that is not llem_nb's) it runs one-shot.
    """

    def __init__(self) -> None:
        self.kept: KeptContainer | None = None
        self.next: ExperimentConfig | None = None

    def wanted(self, runner: DockerRunner, config: ExperimentConfig) -> bool:
        identity = runner.identity(config)
        if self.kept is not None and self.kept.identity == identity:
            return True
        upcoming, self.next = self.next, None
        return upcoming is not None and runner.identity(upcoming) == identity

    def run(
        self,
        runner: DockerRunner,
        config: ExperimentConfig,
        *,
        cycle: int,
        study: str,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> ExperimentResult:
        """One experiment in the kept container (started first if needed); on any failure
        the container is removed and the experiment's files are kept, named in the error.
        ``cancelled`` (``cancel`` was called) is checked once the container is up."""
        kept = self._kept_for(runner, config)
        exchange = Exchange(config, cycle=cycle, study=study, parent=kept.dir)
        failure = runner.failure_for(config, exchange)
        if cancelled():
            self.drop(keep_files=True)
            raise ContainerError(
                f"experiment {config.experiment_id} was stopped before it started in its "
                f"container; its files are kept in {exchange.dir}",
                exchange_dir=str(exchange.dir),
                image=failure.image,
                error_type="Cancelled",
            )
        try:
            reply = kept.ask(exchange.config_path, failure.timeout_s)
        except WorkerTimeout:
            logs = self._save_logs(kept, exchange)
            self.drop(keep_files=True)
            raise classify(replace(failure, phase="timeout", logs=logs)) from None
        except BaseException:
            self.drop(keep_files=True)
            raise
        result = exchange.read_result() if reply is not None and reply.ok else None
        if result is not None:
            exchange.cleanup()
            return result
        logs = self._save_logs(kept, exchange)
        oom = kept.oom_killed()
        code = kept.exit_code if reply is None else 1
        self.drop(keep_files=True)
        error = exchange.read_error()
        raise classify(replace(failure, exit_code=code, oom_killed=oom, error=error, logs=logs))

    def _kept_for(self, runner: DockerRunner, config: ExperimentConfig) -> KeptContainer:
        from docker.errors import DockerException

        identity = runner.identity(config)
        if self.kept is not None and self.kept.identity == identity:
            return self.kept
        self.drop()
        failure = runner.failure_for(config, None)
        attrs = runner.image_attrs(config, failure)
        kwargs = runner.shared_kwargs(config)
        kept = self.kept = KeptContainer(identity)
        kwargs["command"] = worker_command(image_python(attrs) or "python3")
        kwargs["volumes"][str(kept.dir)] = {"bind": CONTAINER_DIR, "mode": "rw"}
        kwargs["labels"][REUSE_LABEL] = "1"
        try:
            kept.start(runner.client, kwargs)
        except DockerException as exc:
            self.drop()
            raise classify(replace(failure, phase="start", exc=exc)) from exc
        return kept

    @staticmethod
    def _save_logs(kept: KeptContainer, exchange: Exchange) -> str:
        text = kept.logs()
        with contextlib.suppress(OSError):
            exchange.log_path.write_text(text)
        return text

    def kill(self) -> None:
        """Remove the kept container from another thread: the experiment waiting on it
        sees it exit and fails (``cancel``)."""
        kept = self.kept
        if kept is not None and kept.container is not None:
            remove_container(kept.container)

    def drop(self, *, keep_files: bool = False) -> None:
        """Remove the kept container (the model changes, a failure, the study's end)."""
        kept, self.kept = self.kept, None
        if kept is not None:
            kept.close(keep_files=keep_files)
