"""Runners on this machine: in the kernel's own process, or in a spawned child per experiment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from llem_nb.config import ExperimentConfig
from llem_nb.errors import ExperimentTimeout, RunnerError
from llem_nb.harness import Harness
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import Runner
from llem_nb.runners.exchange import CONFIG_ENV, Exchange


class LocalRunner(Runner):
    """In-process: the notebook default. The model shares the kernel's memory."""

    name = "local"

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        return Harness().run(config, cycle=cycle, study=study)


class SubprocessRunner(Runner):
    """A fresh Python process per experiment, through the same entrypoint containers use.

    Isolates memory and threads; enforces ``config.timeout_s`` (or ``timeout_s`` here).
    The child's traceback is re-raised in the parent as a ``RunnerError``.
    """

    name = "subprocess"

    def __init__(
        self,
        *,
        source: str | None = None,
        timeout_s: float | None = None,
        python: str | None = None,
    ) -> None:
        super().__init__(source=source)
        self.timeout_s = timeout_s
        self.python = python or sys.executable

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        exchange = Exchange(config, cycle=cycle, study=study)
        env = {**os.environ, CONFIG_ENV: str(exchange.config_path)}
        timeout = config.timeout_s or self.timeout_s
        with open(exchange.log_path, "wb") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "llem_nb.runners.entrypoint"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise ExperimentTimeout(
                    f"experiment {config.experiment_id} ran past timeout_s={timeout} and was "
                    f"killed; its files are kept in {exchange.dir}",
                    category="timeout",
                ) from None
            except BaseException:
                _kill(proc)
                raise
        result = exchange.read_result() if code == 0 else None
        if result is not None:
            exchange.cleanup()
            return result
        raise _child_failure(config, exchange, code)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child and everything it spawned (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _child_failure(config: ExperimentConfig, exchange: Exchange, code: int) -> RunnerError:
    error = exchange.read_error()
    where = f"its files are kept in {exchange.dir}"
    if error is not None:
        return RunnerError(
            f"experiment {config.experiment_id} failed in its process: {error.type}: "
            f"{error.message} ({where})",
            fix=error.fix,
            error_type=error.type,
            remote_traceback=error.traceback,
            category=error.category,
        )
    if code < 0:
        how = f"was killed by signal {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code} without a result"
    return RunnerError(
        f"experiment {config.experiment_id}: the child process {how} ({where})",
        fix="read output.log in that directory; a SIGKILL often means out of memory",
        error_type="ChildProcessDied",
        remote_traceback=exchange.log_tail() or None,
        category="crashed",
    )
