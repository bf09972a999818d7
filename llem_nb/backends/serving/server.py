"""Servers a serving workload talks to: one llem_nb starts (vLLM's), or one already running.

``ManagedServer`` starts a command (by default vLLM's OpenAI server, from this process's
interpreter, on a free loopback port) under the guard (``serving.guard``), in a session of
its own, waits for ``/health``, and stops it — its own process group only — on every exit
path: ``stop()``, a failure, Ctrl-C (``with`` blocks and ``finally``), and, through the
guard, the death of this process. Its output goes to a log whose tail explains a failure.
``ExternalServer`` is a server llem_nb did not start (``backend="openai"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llem_nb.errors import BackendError

HEALTH_POLL_S = 0.5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout_s: float = 5.0, api_key: str | None = None) -> Any:
    """GET ``url`` and parse JSON; None on any failure (a probe, never an error)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s
        ) as r:
            body = r.read()
    except (OSError, urllib.error.URLError, ValueError):
        return None
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return None


def healthy(base_url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=timeout_s) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def engine_version(base_url: str, api_key: str | None = None) -> str:
    """What the server says it is: ``/version``, else the owner in ``/v1/models``, else unknown."""
    found = get_json(f"{base_url}/version", api_key=api_key)
    if isinstance(found, dict) and found.get("version"):
        return str(found["version"])
    models = get_json(f"{base_url}/v1/models", api_key=api_key)
    if isinstance(models, dict):
        for item in models.get("data") or []:
            if isinstance(item, dict) and item.get("owned_by"):
                return f"unknown ({item['owned_by']})"
    return "unknown"


class ManagedServer:
    """A server process llem_nb owns. ``command(port)`` gives its argv."""

    def __init__(
        self,
        command: Callable[[int], list[str]],
        *,
        health_timeout_s: float = 600.0,
        env: dict[str, str] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.argv = command(self.port)
        self.health_timeout_s = health_timeout_s
        self._env = env
        self._now = now
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir = tempfile.mkdtemp(prefix="llem-server-")
        self.log_path = Path(self._log_dir) / "server.log"

    @property
    def pid(self) -> int | None:
        """The guard's pid (it leads the session; the server leads its own group)."""
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> ManagedServer:
        guard = [sys.executable, "-m", "llem_nb.backends.serving.guard", str(os.getpid()), "--"]
        env = {**os.environ, **(self._env or {})}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [*guard, *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = self._now() + self.health_timeout_s
        while True:
            code = self.exit_code()
            if code is not None:
                raise BackendError(
                    f"the server exited (status {code}) before it became healthy; its log "
                    f"ends:\n{self.log_tail()}",
                    fix=f"read {self.log_path}",
                )
            if healthy(self.base_url):
                return
            if self._now() >= deadline:
                raise BackendError(
                    f"the server at {self.base_url} was not healthy after "
                    f"{self.health_timeout_s:.0f} s; its log ends:\n{self.log_tail()}",
                    fix=f"raise timeout_s if the model loads slowly, or read {self.log_path}",
                )
            time.sleep(HEALTH_POLL_S)

    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def check_alive(self) -> None:
        """Raise (with the log's tail) when the server has exited."""
        code = self.exit_code()
        if code is not None:
            raise BackendError(
                f"the server died mid-run (status {code}); its log ends:\n{self.log_tail()}",
                fix=f"read {self.log_path}",
            )

    def stop(self) -> None:
        """SIGTERM the guard (it stops the server's group), wait; SIGKILL the guard's group
        if it does not end (it was started in a session of its own, so that is ours)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(30.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            proc.wait(10.0)

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def vllm_command(engine: dict[str, Any], served_name: str) -> Callable[[int], list[str]]:
    """argv of vLLM's OpenAI server from ``vllm.LLM`` keyword arguments."""

    def argv(port: int) -> list[str]:
        out = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
        out += ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", served_name]
        for key, value in engine.items():
            if value is None or key == "disable_log_stats":
                continue
            flag = "--" + key.replace("_", "-")
            if value is True:
                out.append(flag)
            elif value is False:
                if key.startswith("enable_"):
                    out.append("--no-" + flag[2:])
            else:
                out += [flag, str(value)]
        return out

    return argv
