"""Runners on this machine: in the kernel's own process, or in child processes.

With ``reuse="auto"`` (the study default) the local runner keeps the loaded model in the
kernel between experiments with equal load keys, and the subprocess runner keeps one
worker process alive per load key (``llem_nb.runners.worker``). With ``reuse="never"``
every experiment loads its own model: in the kernel, or in a fresh child of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from llem_nb.backends.base import load_identity
from llem_nb.backends.deadline import enforce
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import plugin_env
from llem_nb.errors import ExperimentTimeout, RunnerError
from llem_nb.measure.harness import Harness
from llem_nb.measure.reuse import ModelKeeper
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import Runner
from llem_nb.runners.exchange import CONFIG_ENV, Exchange
from llem_nb.runners.interpreter import check_python, is_this_python, preflight_in
from llem_nb.runners.worker import Worker, WorkerTimeout


class LocalRunner(Runner):
    """In-process: the notebook default. The model shares the kernel's memory.

    ``timeout_s`` is enforced by the backends themselves (``backends.deadline``: they stop
    generating once it has passed), timed on ``clock``; the experiment then fails as a
    timeout.
    """

    name = "local"

    def __init__(
        self, *, source: str | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__(source=source)
        self.keeper = ModelKeeper()
        self.clock = clock

    def harness(self, config: ExperimentConfig, keeper: ModelKeeper | None) -> Harness:
        """The Harness for one experiment (a subclass may inject a meter or a clock)."""
        return Harness(keeper=keeper)

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        keeper = self.keeper if self.reuse == "auto" else None
        with enforce(config.timeout_s, self.clock) as deadline:
            try:
                result = self.harness(config, keeper).run(config, cycle=cycle, study=study)
            except Exception as exc:
                if deadline is not None and deadline.passed:
                    raise _timed_out(config) from exc
                raise
        if deadline is not None and deadline.passed:
            raise _timed_out(config)
        return result

    def release(self) -> None:
        """Unload the kept model."""
        self.keeper.release()

    def close(self) -> None:
        self.release()


class SubprocessRunner(Runner):
    """Experiments in child processes: isolates memory and threads from the kernel.

    ``reuse="never"``: a fresh process per experiment, through the same entrypoint
    containers use. ``reuse="auto"``: one worker process per load key, alive across its
    experiments. Either way ``config.timeout_s`` (or ``timeout_s`` here) bounds each
    experiment, the child's traceback is re-raised in the parent as a ``RunnerError``, and
    a child that crashes or times out is killed; the next experiment gets a new one.
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
        self._proc: subprocess.Popen[bytes] | None = None
        self._worker: Worker | None = None
        self._cancelled = False

    @classmethod
    def from_arg(cls, arg: str, *, source: str | None = None) -> SubprocessRunner:
        """``subprocess:<python>``: run each experiment with that interpreter (a vLLM venv)."""
        return cls(source=source, python=check_python(arg))

    @property
    def checks_backend(self) -> bool:
        """True when the backend's checks must run in the child's interpreter, not here."""
        return not is_this_python(self.python)

    def preflight(self, config: ExperimentConfig) -> None:
        """With another interpreter, run the backend's preflight there (before the study)."""
        if self.checks_backend:
            preflight_in(self.python, config)

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        self._cancelled = False
        if self.reuse == "auto":
            return self._in_worker(config, cycle=cycle, study=study)
        exchange = Exchange(config, cycle=cycle, study=study)
        env = {**os.environ, **plugin_env(), CONFIG_ENV: str(exchange.config_path)}
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
            self._proc = proc
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                timed_out = ExperimentTimeout(
                    f"experiment {config.experiment_id} ran past timeout_s={timeout} and was "
                    f"killed; its files are kept in {exchange.dir}",
                    category="timeout",
                )
                timed_out.exchange_dir = str(exchange.dir)
                raise timed_out from None
            except BaseException as exc:
                _kill(proc)
                _drop_if_interrupted(exchange, exc)
                raise
            finally:
                self._proc = None
        result = exchange.read_result() if code == 0 else None
        if result is not None:
            exchange.cleanup()
            return result
        raise self._failure(config, exchange, code)

    def _worker_for(self, config: ExperimentConfig) -> Worker:
        """The live worker serving this load key in this environment, else a new one."""
        identity: Any = load_identity(config) or ("config", config.config_hash)
        env = {**os.environ, **plugin_env()}
        worker = self._worker
        if worker is not None and worker.alive and (worker.identity, worker.env) == (identity, env):
            return worker
        self.release()
        self._worker = Worker(self.python, identity, env)
        return self._worker

    def _in_worker(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        worker = self._worker_for(config)
        exchange = Exchange(config, cycle=cycle, study=study)
        timeout = config.timeout_s or self.timeout_s
        self._proc = worker.proc
        try:
            reply = worker.ask(exchange.config_path, timeout, exchange.log_path)
        except WorkerTimeout:
            self._worker = None
            raise ExperimentTimeout(
                f"experiment {config.experiment_id} ran past timeout_s={timeout} and its "
                f"worker process was killed; its files are kept in {exchange.dir}",
                category="timeout",
                exchange_dir=str(exchange.dir),
            ) from None
        except BaseException as exc:
            self._worker = None
            _drop_if_interrupted(exchange, exc)
            raise
        finally:
            self._proc = None
        if reply is None:
            self._worker = None
            raise self._failure(config, exchange, worker.kill())
        result = exchange.read_result() if reply.ok else None
        if result is not None:
            exchange.cleanup()
            return result
        raise self._failure(config, exchange, 1)

    def _failure(self, config: ExperimentConfig, exchange: Exchange, code: int) -> RunnerError:
        """Why the child gave no result; a child ``cancel`` killed leaves no files behind."""
        if self._cancelled:
            exchange.cleanup()
            return RunnerError(
                f"experiment {config.experiment_id} was stopped (its process was killed)",
                fix="resume the study to measure it",
                category="interrupted",
            )
        return _child_failure(config, exchange, code)

    def release(self) -> None:
        """Stop the worker (it frees its model first)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def close(self) -> None:
        self.release()

    def cancel(self) -> None:
        """Kill the running child (and its process group); ``run`` then raises."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            self._cancelled = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()


def _timed_out(config: ExperimentConfig) -> ExperimentTimeout:
    return ExperimentTimeout(
        f"experiment {config.experiment_id} ran past timeout_s={config.timeout_s}; its "
        "backend stopped generating there, and a cut-short run is not a result",
        category="timeout",
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child and everything it spawned (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _drop_if_interrupted(exchange: Exchange, exc: BaseException) -> None:
    """An interrupted experiment (Ctrl-C, SIGTERM) has nothing to inspect: remove its files."""
    if isinstance(exc, KeyboardInterrupt):
        exchange.cleanup()


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
            exchange_dir=str(exchange.dir),
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
        exchange_dir=str(exchange.dir),
    )
