"""Work the Docker runner does off the critical path: containers created ahead, and
finished ones removed later.

The study loop announces the next experiment (``Runner.prepare``) before running the
current one. Its exchange dir and container are created by one background thread once the
current container has *started* (``flush``), so the daemon is never asked to create,
remove and start at the same moment: only the start is on the critical path. A container
that exited cleanly is removed at the next flush, or when the runner closes (or is
garbage-collected).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.runners.docker.container import Prepared, remove_container

Key = tuple[str, int, str]
Create = Callable[[ExperimentConfig, int, str], Prepared]


class Ahead:
    """Queued creations, prepared containers and finished ones, for one runner."""

    def __init__(self, create: Create) -> None:
        self._create = create
        self._queued: dict[Key, tuple[ExperimentConfig, int, str]] = {}
        self._prepared: dict[Key, Future[Prepared]] = {}
        self._finished: list[Any] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        weakref.finalize(self, _remove_all, self._finished)

    def queue(self, config: ExperimentConfig, cycle: int, study: str) -> None:
        key = (config.config_hash, cycle, study)
        with self._lock:
            if key not in self._prepared:
                self._queued[key] = (config, cycle, study)

    def finished(self, container: Any) -> None:
        with self._lock:
            self._finished.append(container)

    def flush(self) -> None:
        """Hand removals and queued creations to the background thread."""
        with self._lock:
            removals = list(self._finished)
            self._finished.clear()
            queued, self._queued = self._queued, {}
            if not removals and not queued:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="llem-docker")
            pool = self._pool
            for container in removals:
                pool.submit(remove_container, container)
            for key, (config, cycle, study) in queued.items():
                self._prepared[key] = pool.submit(self._create, config, cycle, study)

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
        """Drop what was prepared, remove what finished, and wait for the thread."""
        self.drop()
        self.flush()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _remove_all(containers: list[Any]) -> None:
    for container in containers:
        remove_container(container)
    containers.clear()
