"""RayRunner: each experiment a Ray task on a cluster, with the GPUs it asks for.

Runner values: ``ray`` (``$RAY_ADDRESS``, or a local cluster started here),
``ray:<address>``, and ``ray+docker`` / ``ray+docker:<image>`` (the task runs the
DockerRunner on its worker). The task runs the same Harness as every other runner
and returns the result; the driver writes the store and journal as results arrive.
Ray sets ``CUDA_VISIBLE_DEVICES`` for a task; the meter maps exactly those GPUs.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import plugin_env
from llem_nb.errors import ConfigError, PreflightError, RunnerError
from llem_nb.measure.harness import Harness
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import Runner
from llem_nb.runners.docker.runner import DockerRunner

log = logging.getLogger(__name__)

RAY_FIX = "pip install 'llem_nb[ray]' (and the same llem_nb on every worker)"
PASS_ENV_PREFIXES = ("LLEM_", "HF_", "TRANSFORMERS_", "VLLM_", "TOKENIZERS_", "DOCKER_")
_GIB = 1024**3
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _remote_traceback(exc: BaseException) -> str:
    """The worker's traceback as plain text (Ray colours its own rendering)."""
    text = getattr(exc, "traceback_str", None) or str(exc)
    text = _ANSI.sub("", str(text))
    return text if text.startswith("Traceback") else "Traceback (on the Ray worker):\n" + text


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "runner 'ray' needs the ray package", field="runner", fix=RAY_FIX
        ) from None
    return ray


def task_env() -> dict[str, str]:
    """The driver's llem_nb/HF/vLLM settings at submission, passed to that task's process."""
    passed = {k: v for k, v in os.environ.items() if k.startswith(PASS_ENV_PREFIXES)}
    return {**passed, **plugin_env()}


def gpus_needed(config: ExperimentConfig, cluster_gpus: float) -> int:
    """GPUs the task asks Ray for: the experiment's count; ``all`` = 0 on a GPU-less cluster."""
    count = config.gpu_count_requested
    if count is not None:
        return count
    if cluster_gpus <= 0:
        return 0
    raise PreflightError(
        f"experiment {config.experiment_id} has gpus='all', which means nothing on a cluster "
        f"of {cluster_gpus:g} GPUs",
        fix="set gpus to the number of GPUs each experiment should get, e.g. gpus=1",
    )


def memory_needed(config: ExperimentConfig) -> int | None:
    """Bytes to reserve: twice the local weights plus 1 GiB; None when unknown (a hub id)."""
    path = Path(config.model).expanduser()
    if not path.is_dir():
        return None
    weights = sum(
        f.stat().st_size for f in path.iterdir() if f.suffix in (".safetensors", ".bin", ".pt")
    )
    return 2 * weights + _GIB


def run_on_worker(payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The task body: the same Harness (or DockerRunner) as on the driver's machine."""
    config = ExperimentConfig.model_validate(payload["config"])
    if payload["docker"]:
        runner = DockerRunner(payload["image"])
        try:
            result = runner.run(config, cycle=payload["cycle"], study=payload["study"])
        finally:
            runner.close()  # removes the container, which a clean exit leaves for later
    else:
        result = Harness().run(config, cycle=payload["cycle"], study=payload["study"])
    environment = dict(result.environment)
    environment["ray_node_ip"] = _ray().util.get_node_ip_address()
    result.environment = environment
    return result.model_dump(mode="json"), getattr(result, "_timeseries", None)


class RayRunner(Runner):
    """Dispatch experiments as Ray tasks; several run at once when the cluster has room."""

    @property
    def checks_backend(self) -> bool:
        """Experiments run elsewhere (a container, a worker): the backend's own checks
        belong there, not in this process."""
        return True

    name = "ray"
    concurrent = True

    def __init__(
        self,
        *,
        source: str | None = None,
        address: str | None = None,
        docker: bool = False,
        image: str | None = None,
        max_retries: int = 1,
        local_cpus: int = 2,
    ) -> None:
        super().__init__(source=source)
        self.address = address
        self.docker = docker
        self.image = image
        self.max_retries = max_retries
        self.local_cpus = local_cpus
        self._started_here = False
        self._remote: Any = None
        self._inflight: dict[Any, ExperimentConfig] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_arg(cls, arg: str, *, source: str | None = None) -> Runner:
        return cls(source=source, address=arg)

    def metadata(self) -> dict[str, Any]:
        meta = {**super().metadata(), "runner": "ray+docker" if self.docker else "ray"}
        if self.docker and self.image:
            meta["image"] = self.image
        return meta

    # ------------------------------------------------------------------ cluster

    def connect(self) -> Any:
        """Join ``address`` / ``$RAY_ADDRESS``, or start a small local cluster."""
        ray = _ray()
        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.local_cpus, include_dashboard=False, log_to_driver=False)
                self._started_here = True
        if self._remote is None:
            self._remote = ray.remote(run_on_worker)
        return ray

    def cluster_resources(self) -> dict[str, float]:
        return dict(self.connect().cluster_resources())

    def preflight(self, config: ExperimentConfig) -> None:
        """What the experiment needs vs what the cluster has, before anything runs."""
        have = self.cluster_resources()
        gpus = gpus_needed(config, have.get("GPU", 0.0))
        memory = memory_needed(config)
        short = []
        if gpus > have.get("GPU", 0.0):
            short.append(f"{gpus} GPU(s) per experiment, the cluster has {have.get('GPU', 0):g}")
        if memory and memory > have.get("memory", float("inf")):
            short.append(
                f"{memory / _GIB:.1f} GiB memory, the cluster offers {have['memory'] / _GIB:.1f}"
            )
        if short:
            raise PreflightError(
                f"experiment {config.experiment_id} ({config.model}) needs "
                + "; ".join(short)
                + f" (cluster: {self._describe(have)})",
                fix="add GPU workers to the cluster, lower gpus, or run with runner='local'",
            )

    @staticmethod
    def _describe(have: dict[str, float]) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in sorted(have.items()) if "node" not in k)

    # ------------------------------------------------------------------ tasks

    def submit(self, config: ExperimentConfig, *, cycle: int, study: str) -> Any:
        """Start one experiment as a task; returns its handle (a Ray ObjectRef)."""
        ray = self.connect()
        have = ray.cluster_resources()
        options: dict[str, Any] = {
            "num_gpus": gpus_needed(config, have.get("GPU", 0.0)),
            "num_cpus": 1,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
            "runtime_env": {"env_vars": task_env()},
        }
        memory = memory_needed(config)
        if memory:
            options["memory"] = memory
        payload = {
            "config": config.model_dump(mode="json"),
            "cycle": cycle,
            "study": study,
            "docker": self.docker,
            "image": self.image,
        }
        ref = self._remote.options(**options).remote(payload)
        log.info(
            "ray task for %s cycle %d: %s GPU, memory %s, up to %d retries if its worker dies",
            config.experiment_id, cycle, options["num_gpus"], memory, self.max_retries,
        )  # fmt: skip
        with self._lock:
            self._inflight[ref] = config
        return ref

    def wait(self, handles: Iterable[Any], timeout_s: float | None = None) -> list[Any]:
        """The handles that have finished (at least one unless the timeout passed)."""
        pending = list(handles)
        if not pending:
            return []
        ready, _ = self.connect().wait(pending, num_returns=1, timeout=timeout_s)
        return list(ready)

    def result(self, handle: Any) -> ExperimentResult:
        """The finished task's result with runner metadata; raises RunnerError on failure."""
        ray = self.connect()
        with self._lock:
            config = self._inflight.pop(handle, None)
        experiment = config.experiment_id if config is not None else "?"
        try:
            data, series = ray.get(handle)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            raise RunnerError(
                f"experiment {experiment} failed on its Ray worker: "
                f"{type(cause).__name__ if cause else 'error'}: {cause or exc}",
                fix=getattr(cause, "fix", None) or None,
                error_type=type(cause).__name__ if cause else "RayTaskError",
                remote_traceback=_remote_traceback(exc),
                category=getattr(cause, "category", "error"),
            ) from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            log.warning("ray worker of %s died after %d retries", experiment, self.max_retries)
            raise RunnerError(
                f"experiment {experiment}: its Ray worker died "
                f"(retried {self.max_retries}×): {type(exc).__name__}",
                fix="a worker that dies is often out of memory; check the worker's logs",
                error_type=type(exc).__name__,
                remote_traceback=_remote_traceback(exc),
                category="crashed",
            ) from None
        except ray.exceptions.TaskCancelledError:
            raise RunnerError(
                f"experiment {experiment} was cancelled", category="interrupted"
            ) from None
        result = ExperimentResult.model_validate(data)
        result._timeseries = series
        return result.model_copy(update=self.metadata())

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        return self.result(self.submit(config, cycle=cycle, study=study))

    def run(self, config: ExperimentConfig, *, cycle: int = 0, study: str = "") -> ExperimentResult:
        return self._execute(config, cycle=cycle, study=study)

    def cancel(self) -> None:
        """Cancel every task still running (force: the worker process is killed)."""
        if self._remote is None:
            return
        ray = _ray()
        with self._lock:
            refs = list(self._inflight)
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                continue

    def close(self) -> None:
        """Shut down the local cluster this runner started (an external one is left alone)."""
        if self._started_here:
            _ray().shutdown()
            self._started_here = False
            self._remote = None


class RayDockerRunner(RayRunner):
    """``ray+docker``: each task runs the experiment in a container on its worker."""

    name = "ray+docker"

    def __init__(self, *, source: str | None = None, image: str | None = None, **kw: Any) -> None:
        super().__init__(source=source, docker=True, image=image, **kw)

    @classmethod
    def from_arg(cls, arg: str, *, source: str | None = None) -> Runner:
        return cls(source=source, image=arg)
