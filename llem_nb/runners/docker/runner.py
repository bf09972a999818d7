"""DockerRunner: each experiment in a fresh container, handed its config through an exchange dir.

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
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ConfigError, PreflightError
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.base import Runner
from llem_nb.runners.docker.classify import Failure, classify
from llem_nb.runners.docker.container import (
    gpu_requests,
    hf_cache_mount,
    host_packages,
    input_mounts,
)
from llem_nb.runners.docker.images import default_image, parse_image
from llem_nb.runners.exchange import CONFIG_ENV, Exchange

CONTAINER_DIR = "/run/llem"
PASS_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
EXPERIMENT_LABEL = "org.llem-nb.experiment"
PULL_POLICIES = ("missing", "never", "always")

log = logging.getLogger(__name__)


class DockerRunner(Runner):
    """One ephemeral container per experiment.

    ``image``: default ``ghcr.io/llem-nb/{backend}:{version}-cuda{major}``. ``timeout_s``
    applies when the config sets none. ``memory_limit`` (e.g. ``"16g"``) caps the
    container's RAM (no swap). ``environment``/``volumes`` add to what the runner sets.
    ``pull``: ``missing`` (default), ``never`` or ``always``. ``network``: ``none`` by
    default — models come from the mounted cache. ``user``: the container runs as this
    process's uid:gid (so the exchange dir stays private) unless set; ``""`` keeps
    the image's user. GPUs: ``gpus="all"`` → every GPU, ``n`` → n GPUs, a list → every
    GPU narrowed by ``CUDA_VISIBLE_DEVICES`` to the list (host numbering), ``0`` → none.
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
        shm_size: str = "2g",
        memory_limit: str | int | None = None,
        environment: dict[str, str] | None = None,
        volumes: dict[str, dict[str, str]] | None = None,
        pull: str = "missing",
        network: str = "none",
        user: str | None = None,
        command: list[str] | None = None,
        base_url: str | None = None,
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

    @classmethod
    def from_arg(cls, arg: str, *, source: str | None = None) -> DockerRunner:
        return cls(image=str(parse_image(arg)), source=source)

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "image": self._image_used, "image_digest": self._digest}

    def describe(self) -> str:
        return f"docker:{self.image}" if self.image else "docker (default image per backend)"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Any:
        """The SDK client, connected on first use (a DockerError says why it cannot be)."""
        if self._client is None:
            from llem_nb.runners.docker.probe import connect

            self._client = connect(self.base_url)
        return self._client

    def image_for(self, config: ExperimentConfig) -> str:
        image = self.image or default_image(config.backend)
        how = "given" if self.image else "the backend's default"
        log.info("image for %s: %s (%s)", config.backend, image, how)
        return image

    def preflight(self, config: ExperimentConfig) -> None:
        """Before a study starts: the daemon answers and, for GPU runs, has the NVIDIA toolkit."""
        from llem_nb.runners.docker.errors import TOOLKIT_FIX, DockerError
        from llem_nb.runners.docker.probe import probe

        try:
            self.client  # noqa: B018
        except DockerError as exc:
            raise PreflightError(exc.message, fix=exc.fix) from None
        found = probe(self.base_url)
        if config.gpus != 0 and not found.nvidia:
            raise PreflightError(
                f"experiment {config.experiment_id} asks for GPUs (gpus={config.gpus!r}) but "
                f"Docker cannot provide them here: {found.nvidia_how}",
                fix=TOOLKIT_FIX,
            )

    def cancel(self) -> None:
        """Kill the running container (from another thread); ``run`` then raises."""
        container = self._container
        if container is not None:
            _remove(container)

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        client = self.client
        image = self.image_for(config)
        self._image_used, self._digest = image, None
        exchange = Exchange(config, cycle=cycle, study=study)
        failure = Failure(
            experiment_id=config.experiment_id,
            exchange_dir=str(exchange.dir),
            image=image,
            backend=config.backend,
            gpu_requested=config.gpus != 0,
            timeout_s=config.timeout_s or self.timeout_s,
        )
        attrs = self._ensure_image(client, image, failure)
        kwargs = self.container_kwargs(config, exchange, attrs)
        code, oom, logs, image_id = self._run_container(client, kwargs, exchange, failure)
        self._digest = (attrs.get("RepoDigests") or [None])[0] or image_id
        result = exchange.read_result() if code == 0 and not oom else None
        if result is None:
            error = exchange.read_error()
            raise classify(replace(failure, exit_code=code, oom_killed=oom, error=error, logs=logs))
        exchange.cleanup()
        return result

    def _ensure_image(self, client: Any, image: str, failure: Failure) -> dict[str, Any]:
        """The image's attributes; pulled per the pull policy, else an ``ImagePullError``."""
        from docker.errors import DockerException, ImageNotFound

        if image in self._images:
            return self._images[image]
        try:
            if self.pull == "always":
                found = client.images.pull(image)
            else:
                try:
                    found = client.images.get(image)
                except ImageNotFound:
                    if self.pull == "never":
                        raise
                    found = client.images.pull(image)
        except DockerException as exc:
            raise classify(replace(failure, phase="pull", exc=exc)) from exc
        self._images[image] = found.attrs
        return found.attrs

    def container_kwargs(
        self, config: ExperimentConfig, exchange: Exchange, image_attrs: dict[str, Any]
    ) -> dict[str, Any]:
        """What ``containers.create`` gets: env, mounts, GPUs, limits, labels."""
        env = {
            CONFIG_ENV: f"{CONTAINER_DIR}/{exchange.config_path.name}",
            "LLEM_IN_CONTAINER": "1",
            "PYTHONUNBUFFERED": "1",
            "HOME": "/tmp",
        }
        env.update({k: os.environ[k] for k in (*PASS_ENV, "LLEM_BACKENDS") if os.environ.get(k)})
        volumes: dict[str, dict[str, str]] = {
            str(exchange.dir): {"bind": CONTAINER_DIR, "mode": "rw"}
        }
        inputs, working_dir = input_mounts(config)
        volumes.update(inputs)
        cache, cache_env = hf_cache_mount()
        volumes.update(cache)
        env.update(cache_env)
        volumes.update(host_packages(image_attrs))
        requests, gpu_env = gpu_requests(config.gpus)
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
            "user": self._container_user(),
            "working_dir": working_dir,
        }
        if self.memory_limit is not None:
            kwargs["mem_limit"] = kwargs["memswap_limit"] = self.memory_limit
        return kwargs

    def _container_user(self) -> str | None:
        if self.user is not None:
            return self.user or None
        from llem_nb.runners.docker.probe import probe

        if probe(self.base_url).rootless:
            return None
        return f"{os.getuid()}:{os.getgid()}"

    def _run_container(
        self, client: Any, kwargs: dict[str, Any], exchange: Exchange, failure: Failure
    ) -> tuple[int, bool, str, str]:
        """Create, start, wait (with timeout), read logs and state, remove. Always removes."""
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        container = None
        try:
            container = self._container = client.containers.create(**kwargs)
            container.start()
        except DockerException as exc:
            self._container = None
            if container is not None:
                _remove(container)
            raise classify(replace(failure, phase="start", exc=exc)) from exc
        t0 = time.monotonic()
        try:
            try:
                status = container.wait(timeout=failure.timeout_s)
            except RequestException as exc:
                logs = _logs(container, exchange)
                limit = failure.timeout_s
                if limit is not None and time.monotonic() - t0 >= limit * 0.9:
                    raise classify(replace(failure, phase="timeout", logs=logs)) from None
                raise classify(replace(failure, phase="wait", exc=exc, logs=logs)) from exc
            logs = _logs(container, exchange)
            with contextlib.suppress(DockerException):  # gone after cancel(): no newer state
                container.reload()
            state = container.attrs.get("State", {})
            image_id = str(container.attrs.get("Image", ""))
        finally:
            self._container = None
            _remove(container)
        return int(status.get("StatusCode", -1)), bool(state.get("OOMKilled")), logs, image_id


def _logs(container: Any, exchange: Exchange) -> str:
    """The container's stdout+stderr, also saved as ``output.log`` in the exchange dir."""
    try:
        text = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    except Exception:  # a vanished container has no logs; the error file may still say why
        return ""
    with contextlib.suppress(OSError):
        exchange.log_path.write_text(text)
    return text


def _remove(container: Any) -> None:
    """Kill (if running) and remove; a container that is already gone is fine."""
    from docker.errors import DockerException

    with contextlib.suppress(DockerException):
        container.remove(force=True)
