"""The Docker runner's errors: one per thing that can break, each saying the fix.

``classify`` (in ``runners.classify``) picks the most specific one from Docker's
structured signals. Every error keeps its message in ``args`` and the rest in
``__dict__``, so it pickles across processes.

``TimeoutError`` and ``PermissionError`` are this module's names for
``ContainerTimeoutError`` and ``DockerPermissionError``; import them qualified
(``errors.TimeoutError``) so the builtins are not shadowed.
"""

from __future__ import annotations

from llem_nb.errors import ExperimentTimeout, RunnerError

TOOLKIT_URL = (
    "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"
)
DOCKER_INSTALL_URL = "https://docs.docker.com/engine/install/"
TOOLKIT_FIX = (
    "install the NVIDIA Container Toolkit (nvidia-ctk, nvidia-container-runtime) and restart "
    f"the Docker daemon: {TOOLKIT_URL}; or set gpus=0 to run the experiment on the CPU"
)
PERMISSION_FIX = (
    "add your user to the docker group (sudo usermod -aG docker $USER, then log in again), "
    "or point DOCKER_HOST at a daemon you may use (rootless Docker: "
    "unix://$XDG_RUNTIME_DIR/docker.sock)"
)
UNAVAILABLE_FIX = (
    f"start the Docker daemon (sudo systemctl start docker) or set DOCKER_HOST; to install "
    f"Docker: {DOCKER_INSTALL_URL}"
)


class DockerError(RunnerError):
    """An experiment failed in or around its container; ``stderr_snippet`` is the log's tail."""

    default_category = "docker"

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        stderr_snippet: str = "",
        exchange_dir: str | None = None,
        image: str | None = None,
        exit_code: int | None = None,
        error_type: str | None = None,
        remote_traceback: str | None = None,
        category: str | None = None,
    ) -> None:
        super().__init__(
            message,
            fix=fix,
            error_type=error_type,
            remote_traceback=remote_traceback,
            category=category or self.default_category,
        )
        self.stderr_snippet = stderr_snippet
        self.exchange_dir = exchange_dir
        self.image = image
        self.exit_code = exit_code

    @property
    def fix_suggestion(self) -> str:
        return self.fix

    def __str__(self) -> str:
        text = super().__str__()
        if self.stderr_snippet and not self.remote_traceback:
            text += "\n--- last lines of the container log ---\n" + self.stderr_snippet
        return text


class DockerUnavailableError(DockerError):
    """No Docker daemon answers at the configured address."""

    default_category = "docker"
    default_fix = UNAVAILABLE_FIX


class ImagePullError(DockerError):
    """The image is not on this machine and could not be pulled."""

    default_category = "image"


class GPUAccessError(DockerError):
    """The daemon cannot hand GPUs to containers (no NVIDIA Container Toolkit)."""

    default_category = "gpu"
    default_fix = TOOLKIT_FIX


class OOMError(DockerError):
    """The experiment ran out of memory (container limit, host RAM or GPU memory)."""

    default_category = "oom"
    default_fix = (
        "lower batch_size, n_prompts or max_output_tokens, use a smaller precision, or raise "
        "the runner's memory_limit"
    )


class ContainerTimeoutError(DockerError, ExperimentTimeout):
    """The container ran past the experiment's timeout; it was killed and removed."""

    default_category = "timeout"
    default_fix = ExperimentTimeout.default_fix


class DockerPermissionError(DockerError):
    """This user may not talk to the Docker daemon's socket."""

    default_category = "permission"
    default_fix = PERMISSION_FIX


class ContainerError(DockerError):
    """Anything else: the experiment failed inside the container (its traceback is attached)."""

    default_category = "crashed"


TimeoutError = ContainerTimeoutError
PermissionError = DockerPermissionError

# The names LLenergyMeasure's Docker runner raises, so code written against it catches ours.
DockerImagePullError = ImagePullError
DockerGPUAccessError = GPUAccessError
DockerOOMError = OOMError
DockerTimeoutError = ContainerTimeoutError
DockerContainerError = ContainerError
SEED_ALIASES: dict[str, type[DockerError]] = {
    "DockerImagePullError": ImagePullError,
    "DockerGPUAccessError": GPUAccessError,
    "DockerOOMError": OOMError,
    "DockerTimeoutError": ContainerTimeoutError,
    "DockerPermissionError": DockerPermissionError,
    "DockerContainerError": ContainerError,
}
"""Seed error name -> our class (``DockerPermissionError`` is the same name in both)."""
