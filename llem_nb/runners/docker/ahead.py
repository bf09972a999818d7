"""Work the Docker runner does off the critical path: containers created ahead, and
finished ones removed in the background.

The study loop announces the next experiment (``Runner.prepare``) before running the
current one. Its exchange dir and container are created by one background thread once the
current container has *started* (``create_queued``) — while it runs, and never at the
moment the daemon starts it. A container that exited cleanly is removed by the same
thread right away (``remove_later``); ``close`` waits for both.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.runners.docker.container import Prepared, remove_container

Key = tuple[str, int, str]
Create = Callable[[ExperimentConfig, int, str], Prepared]


class Ahead:
    """Queued creations and prepared containers, for one runner, and its background thread."""

    def __init__(self, create: Create) -> None:
        self._create = create
        self._queued: dict[Key, tuple[ExperimentConfig, int, str]] = {}
        self._prepared: dict[Key, Future[Prepared]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _thread(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="llem-docker")
        return self._pool

    def queue(self, config: ExperimentConfig, cycle: int, study: str) -> None:
        """Remember an experiment that runs next (created at the next ``create_queued``)."""
        key = (config.config_hash, cycle, study)
        with self._lock:
            if key not in self._prepared:
                self._queued[key] = (config, cycle, study)

    def create_queued(self) -> None:
        """Create the queued experiments' containers in the background."""
        with self._lock:
            queued, self._queued = self._queued, {}
            for key, (config, cycle, study) in queued.items():
                self._prepared[key] = self._thread().submit(self._create, config, cycle, study)

    def remove_later(self, container: Any) -> None:
        """Remove a finished container in the background."""
        with self._lock:
            self._thread().submit(remove_container, container)

    def take(self, config: ExperimentConfig, cycle: int, study: str) -> Prepared | None:
        """The prepared container of this experiment, if one was made (None: make it now)."""
        key = (config.config_hash, cycle, study)
        with self._lock:
            self._queued.pop(key, None)
            future = self._prepared.pop(key, None)
        if future is None:
            return None
        try:
            return future.result()
        except Exception as exc:  # the caller creates it again and reports the failure
            kept = getattr(exc, "exchange_dir", None)
            if kept:
                shutil.rmtree(kept, ignore_errors=True)
            return None

    def drop(self) -> None:
        """Forget the queue; remove prepared containers and their exchange dirs."""
        with self._lock:
            futures = list(self._prepared.values())
            self._prepared.clear()
            self._queued.clear()
        for future in futures:
            with contextlib.suppress(Exception):
                prepared = future.result()
                remove_container(prepared.container)
                prepared.exchange.cleanup()

    def close(self) -> None:
        """Drop what was prepared and wait for the background thread's removals."""
        self.drop()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
