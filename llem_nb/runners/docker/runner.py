"""DockerRunner: experiments in containers, handed their configs through exchange dirs.

``reuse="never"`` and single experiments: one fresh container per experiment (below).
``reuse="auto"``: one container per loaded model, kept up for the points sharing it
(``reuse``).

Host: a private (0700) exchange dir with ``{hash}_config.json`` → a container (GPUs
requested, ``--shm-size``, the dir at ``/run/llem``, ``LLEM_CONFIG_PATH`` pointing into
it, the Hugging Face cache read-only, ``HF_TOKEN`` as environment only) running the
image's command, ``python -m llem_nb.runners.entrypoint`` → the same Harness as the
local runner → ``{hash}_result.json`` or ``{hash}_error.json``. The host waits (the
experiment's timeout enforced), reads the result, removes the container, deletes the
dir on success and keeps it on any failure, saying where.

What else the container is given (GPUs, local inputs, caches) is in ``container``.
The daemon must see this machine's filesystem (a local daemon, or rootless Docker):
the exchange dir and local inputs are bind mounts.

Dispatch is kept short: ``prepare`` (called by the study loop for the next experiment
while the current one runs) creates that experiment's exchange dir and container
ahead, so only its start is on the critical path; a finished container is removed in
the background; a successful run needs no log or state request (they are read only
to classify a failure).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any

from llem_nb.backends.base import load_identity
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import plugin_env
from llem_nb.errors import ConfigError, PreflightError
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import Runner
from llem_nb.runners.docker.ahead import Ahead
from llem_nb.runners.docker.classify import Failure, classify
from llem_nb.runners.docker.container import (
    USER_ENV,
    Prepared,
    container_user,
    ensure_image,
    gpu_requests,
    hf_cache_mount,
    host_gpu_uuids,
    image_digest,
    input_mounts,
    present_for_driver,
    remove_container,
    save_logs,
)
from llem_nb.runners.docker.errors import TOOLKIT_FIX, ContainerError, DockerError
from llem_nb.runners.docker.images import (
    build_command,
    cuda_major,
    has_driver,
    image_choice,
    image_present,
    is_default_name,
    parse_image,
)
from llem_nb.runners.docker.probe import connect, probe
from llem_nb.runners.docker.reuse import CONTAINER_DIR, Reuse
from llem_nb.runners.exchange import CONFIG_ENV, Exchange

PASS_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
PASS_PREFIXES = ("VLLM_",)
"""vLLM's own settings are environment variables: the host's apply in the container too."""
EXPERIMENT_LABEL = "org.llem-nb.experiment"
PULL_POLICIES = ("missing", "never", "always")

log = logging.getLogger(__name__)


class DockerRunner(Runner):
    """One ephemeral container per experiment, or one per loaded model (``reuse="auto"``).

    ``image``: default ``ghcr.io/llem-nb/{backend}:{version}-cuda{major}``, or the ``-cpu``
    image for ``gpus=0`` experiments on a host without an NVIDIA driver. ``timeout_s``
    applies when the config sets none. ``memory_limit`` (e.g. ``"16g"``) caps the
    container's RAM (no swap). ``environment``/``volumes`` add to what the runner sets.
    ``pull``: ``missing`` (default), ``never`` or ``always``. ``network``: ``none`` by
    default — models come from the mounted cache. ``user``: the container runs as this
    process's uid:gid (so the exchange dir stays private) unless set; ``""`` keeps
    the image's user. GPUs: ``gpus="all"`` → every GPU, ``n`` → the first n by UUID
    (``nvml``: a ``pynvml`` stand-in for the host's), a list → every GPU narrowed by
    ``CUDA_VISIBLE_DEVICES`` (host numbering), ``0`` → none.
    """

    @property
    def checks_backend(self) -> bool:
        """Experiments run elsewhere (a container, a worker): the backend's own checks
        belong there, not in this process."""
        return True

    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        *,
        source: str | None = None,
        timeout_s: float | None = None,
        shm_size: str = "8g",
        memory_limit: str | int | None = None,
        environment: dict[str, str] | None = None,
        volumes: dict[str, dict[str, str]] | None = None,
        pull: str = "missing",
        network: str = "none",
        user: str | None = None,
        command: list[str] | None = None,
        base_url: str | None = None,
        nvml: Any = None,
    ) -> None:
        super().__init__(source=source)
        if image is not None:
            image = str(parse_image(image, field="image"))
        if pull not in PULL_POLICIES:
            raise ConfigError(
                f"pull={pull!r} is not one of {', '.join(PULL_POLICIES)}",
                field="pull",
                fix="use pull='missing' (pull only when the image is not here)",
            )
        self.image = image
        self.timeout_s = timeout_s
        self.shm_size = shm_size
        self._announced: set[tuple[str, str]] = set()
        self.memory_limit = memory_limit
        self.environment = dict(environment or {})
        self.volumes = dict(volumes or {})
        self.pull = pull
        self.network = network
        self.user = user
        self.command = command
        self.base_url = base_url
        self._client: Any = None
        self._images: dict[str, dict[str, Any]] = {}
        self._image_used: str | None = image
        self._digest: str | None = None
        self._container: Any = None
        self._cancelled = threading.Event()
        self._ahead = Ahead(self._create)
        self._reuse = Reuse()
        self.nvml = nvml
        self._gpu_uuids: list[str] | None = None

    @classmethod
    def from_arg(cls, arg: str, *, source: str | None = None) -> DockerRunner:
        return cls(image=str(parse_image(arg)), source=source)

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "image": self._image_used, "image_digest": self._digest}

    def describe(self) -> str:
        return f"docker:{self.image}" if self.image else "docker (default image per backend)"

    def release(self) -> None:
        """Remove the kept container (another runner takes over, or the study ended)."""
        self._reuse.drop()

    def close(self) -> None:
        """Remove kept, prepared and finished containers, then close the client."""
        self._reuse.drop()
        self._ahead.close()
        if self._client is not None:
            self._client.close()
            self._client = None

    def prepare(self, config: ExperimentConfig, *, cycle: int, study: str) -> None:
        """Create the exchange dir and container of the experiment that runs next, in the
        background once the current container has started (``ahead``); ``run`` then only
        starts it. With ``reuse="auto"`` the experiment is only remembered: it may run in
        the kept container. Never raises: ``run`` reports any problem itself."""
        if self.reuse == "auto":
            self._reuse.next = config
            return
        self._ahead.queue(config, cycle, study)

    @property
    def client(self) -> Any:
        """The SDK client, connected on first use (a DockerError says why it cannot be)."""
        if self._client is None:
            self._client = connect(self.base_url)
        return self._client

    def image_for(self, config: ExperimentConfig) -> str:
        """The experiment's image; the choice is logged once per backend and image."""
        if self.image:
            image, why = self.image, "given"
        else:
            image, why = image_choice(config.backend, config.gpus)
            major = cuda_major()
            if has_driver() and major is not None and image.endswith(f"-cuda{major}"):
                found = present_for_driver(lambda: self.client, config.backend, major)
                if found is not None and found != image:
                    image, why = found, f"{why}; {image} is not here, {found} runs on this driver"
        if (config.backend, image) not in self._announced:
            self._announced.add((config.backend, image))
            log.info("image for %s: %s (%s)", config.backend, image, why)
        return image

    def preflight(self, config: ExperimentConfig) -> None:
        """Before a study starts: the daemon answers; for GPU runs it has the NVIDIA toolkit;
        an image named like llem_nb's own (built here, never pulled) is present."""
        try:
            client = self.client
        except DockerError as exc:
            raise PreflightError(exc.message, fix=exc.fix) from None
        found = probe(self.base_url)
        if config.gpus != 0 and not found.nvidia:
            raise PreflightError(
                f"experiment {config.experiment_id} asks for GPUs (gpus={config.gpus!r}) but "
                f"Docker cannot provide them here: {found.nvidia_how}",
                fix=TOOLKIT_FIX,
            )
        image = self.image_for(config)
        if is_default_name(image) and self.pull != "always" and not image_present(client, image):
            raise PreflightError(
                f"the {config.backend} experiments run in {image}, which is not on this machine",
                fix=f"build it: {build_command(image, config.backend)} (or load a saved copy: "
                "llem-nb images load FILE)",
            )

    def cancel(self) -> None:
        """Kill the running container (from another thread); ``run`` then raises, also when
        its container was not started yet."""
        self._cancelled.set()
        container = self._container
        if container is not None:
            remove_container(container)
        self._reuse.kill()
        self._ahead.drop()

    def failure_for(self, config: ExperimentConfig, exchange: Exchange | None) -> Failure:
        """What a failure of this experiment is classified with."""
        return Failure(
            experiment_id=config.experiment_id,
            exchange_dir=str(exchange.dir) if exchange is not None else "",
            image=self.image_for(config),
            backend=config.backend,
            gpu_requested=config.gpus != 0,
            timeout_s=config.timeout_s or self.timeout_s,
        )

    def image_attrs(self, config: ExperimentConfig, failure: Failure) -> dict[str, Any]:
        """The experiment's image's attributes, pulled per the pull policy if missing."""
        return ensure_image(self.client, failure.image, self.pull, self._images, failure)

    def identity(self, config: ExperimentConfig) -> Any:
        """Experiments with equal identities may share a kept container: the load key and
        everything the container is given (image, mounts, GPUs, environment)."""
        kwargs = self.shared_kwargs(config)
        kwargs.pop("labels")
        key = load_identity(config) or ("config", config.config_hash)
        return key, json.dumps(kwargs, sort_keys=True, default=str)

    def _create(self, config: ExperimentConfig, cycle: int, study: str) -> Prepared:
        """Exchange dir, image check and a created container; a classified error on failure."""
        from docker.errors import DockerException

        client = self.client
        exchange = Exchange(config, cycle=cycle, study=study)
        failure = self.failure_for(config, exchange)
        attrs = self.image_attrs(config, failure)
        kwargs = self.container_kwargs(config, exchange)
        try:
            container = client.containers.create(**kwargs)
        except DockerException as exc:
            raise classify(replace(failure, phase="start", exc=exc)) from exc
        return Prepared(exchange, failure, attrs, container)

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        self._image_used, self._digest = self.image_for(config), None
        self._cancelled.clear()
        if self.reuse == "auto" and self.command is None and self._reuse.wanted(self, config):
            self._digest = self._image_digest(config)
            cancelled = self._cancelled.is_set
            return self._reuse.run(self, config, cycle=cycle, study=study, cancelled=cancelled)
        self._reuse.drop()
        prepared = self._ahead.take(config, cycle, study) or self._create(config, cycle, study)
        exchange, failure, attrs = prepared.exchange, prepared.failure, prepared.attrs
        self._container = prepared.container
        if self._cancelled.is_set():
            self._container = None
            remove_container(prepared.container)
            raise ContainerError(
                f"experiment {config.experiment_id} was stopped before its container started; "
                f"its files are kept in {exchange.dir}",
                exchange_dir=str(exchange.dir),
                image=failure.image,
                error_type="Cancelled",
            )
        self._image_used = failure.image
        self._digest = image_digest(attrs)
        code, oom, logs = self._run_container(prepared.container, exchange, failure)
        result = exchange.read_result() if code == 0 and not oom else None
        if result is None:
            error = exchange.read_error()
            raise classify(replace(failure, exit_code=code, oom_killed=oom, error=error, logs=logs))
        exchange.cleanup()
        return result

    def _image_digest(self, config: ExperimentConfig) -> str | None:
        return image_digest(self.image_attrs(config, self.failure_for(config, None)))

    def container_kwargs(self, config: ExperimentConfig, exchange: Exchange) -> dict[str, Any]:
        """What ``containers.create`` gets for a one-shot experiment."""
        kwargs = self.shared_kwargs(config)
        kwargs["environment"][CONFIG_ENV] = f"{CONTAINER_DIR}/{exchange.config_path.name}"
        kwargs["volumes"][str(exchange.dir)] = {"bind": CONTAINER_DIR, "mode": "rw"}
        return kwargs

    def shared_kwargs(self, config: ExperimentConfig) -> dict[str, Any]:
        """Env, mounts, GPUs, limits, labels: all but the exchange dir and config path."""
        env = {
            "LLEM_IN_CONTAINER": "1",
            "PYTHONUNBUFFERED": "1",
            **USER_ENV,
        }
        env.update({k: os.environ[k] for k in PASS_ENV if os.environ.get(k)})
        env.update({k: v for k, v in plugin_env().items() if k == "LLEM_BACKENDS"})
        env.update({k: v for k, v in os.environ.items() if k.startswith(PASS_PREFIXES)})
        volumes: dict[str, dict[str, str]] = {}
        inputs, working_dir = input_mounts(config)
        volumes.update(inputs)
        cache, cache_env = hf_cache_mount()
        volumes.update(cache)
        env.update(cache_env)
        if config.gpus != 0 and self._gpu_uuids is None:
            self._gpu_uuids = host_gpu_uuids(self.nvml)
        requests, gpu_env = gpu_requests(config.gpus, self._gpu_uuids or ())
        env.update(gpu_env)
        env.update(self.environment)
        volumes.update(self.volumes)
        kwargs: dict[str, Any] = {
            "image": self.image_for(config),
            "command": self.command,
            "environment": env,
            "volumes": volumes,
            "shm_size": self.shm_size,
            "network_mode": self.network,
            "labels": {EXPERIMENT_LABEL: config.experiment_id},
            "device_requests": requests or None,
            "user": container_user(self.user, self.base_url),
            "working_dir": working_dir,
        }
        if self.memory_limit is not None:
            kwargs["mem_limit"] = kwargs["memswap_limit"] = self.memory_limit
        return kwargs

    def _run_container(
        self, container: Any, exchange: Exchange, failure: Failure
    ) -> tuple[int, bool, str]:
        """Start, wait (with timeout); on failure read logs and state. Always removed
        (in the background after a clean exit, at once otherwise)."""
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        self._container = container
        clean = False
        try:
            try:
                container.start()
            except DockerException as exc:
                raise classify(replace(failure, phase="start", exc=exc)) from exc
            self._ahead.create_queued()
            t0 = time.monotonic()
            try:
                status = container.wait(timeout=failure.timeout_s)
            except RequestException as exc:
                logs = save_logs(container, exchange)
                limit = failure.timeout_s
                if limit is not None and time.monotonic() - t0 >= limit * 0.9:
                    raise classify(replace(failure, phase="timeout", logs=logs)) from None
                raise classify(replace(failure, phase="wait", exc=exc, logs=logs)) from exc
            code = int(status.get("StatusCode", -1))
            if code == 0 and exchange.result_path.exists():
                clean = True
                return code, False, ""
            logs = save_logs(container, exchange)
            with contextlib.suppress(DockerException):  # gone after cancel(): no newer state
                container.reload()
            state = container.attrs.get("State", {})
            return code, bool(state.get("OOMKilled")), logs
        finally:
            self._container = None
            if clean:
                self._ahead.remove_later(container)
            else:
                remove_container(container)
