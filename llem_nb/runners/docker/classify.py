"""Docker failures translated, in one place, into the runner's errors (``runners.errors``).

Structured signals first — the SDK's exception type and HTTP status, the daemon's
GPU-driver message, ``State.OOMKilled``, exit codes 137/124, the error file the
entrypoint wrote — and log text last, with precise patterns only: a model called
"bloom" is not an OOM. An out-of-memory error is an ``OOMError`` whichever exception
carried it out of the container (torch's ``OutOfMemoryError``, a ``RuntimeError`` that
says CUDA out of memory, vLLM's KV-cache refusal), and a permission-denied daemon
message is a ``DockerPermissionError`` however it is cased.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from typing import Any

from llem_nb.results.schema import ErrorInfo
from llem_nb.runners.docker.errors import (
    ContainerError,
    ContainerTimeoutError,
    DockerError,
    DockerPermissionError,
    DockerUnavailableError,
    GPUAccessError,
    ImagePullError,
    OOMError,
)
from llem_nb.runners.docker.images import build_command, is_default_name

_GPU_DRIVER = re.compile(
    r"could not select device driver|nvidia-container-cli|unknown or invalid runtime name: nvidia"
    r"|no known GPU vendor|libnvidia-ml\.so",
    re.IGNORECASE,
)
_OOM_TEXT = re.compile(
    r"CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|\bMemoryError\b|\bout of memory\b"
    r"|No available memory for the cache blocks|larger than the available KV cache memory"
    r"|CUDA error: out of memory|cudaErrorMemoryAllocation|CUBLAS_STATUS_ALLOC_FAILED",
    re.IGNORECASE,
)
_OOM_TYPES = frozenset({"OutOfMemoryError", "MemoryError", "OOMError"})
_PERMISSION = re.compile(r"permission denied|\bEACCES\b|operation not permitted", re.IGNORECASE)


def _chain(exc: BaseException) -> list[Any]:
    """The exception, its causes and contexts, and exceptions nested in their args."""
    seen: list[Any] = []
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if any(item is s for s in seen) or len(seen) > 50:
            continue
        seen.append(item)
        if isinstance(item, BaseException):
            todo.extend(a for a in item.args if isinstance(a, BaseException))
            todo.extend(x for x in (item.__cause__, item.__context__) if x is not None)
            reason = getattr(item, "reason", None)
            if isinstance(reason, BaseException):
                todo.append(reason)
    return seen


def _errno_in(exc: BaseException, codes: set[int]) -> bool:
    return any(isinstance(e, OSError) and e.errno in codes for e in _chain(exc))


def _connection_reason(exc: BaseException, host: str) -> str:
    socket = host.removeprefix("unix://") if host.startswith("unix://") else None
    for item in _chain(exc):
        if isinstance(item, FileNotFoundError) and socket:
            return f"the socket {socket} does not exist (is the daemon running?)"
        if isinstance(item, ConnectionRefusedError):
            return "connection refused (is the daemon running?)"
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
    return str(exc).strip()[-300:]


def classify_connection(exc: BaseException, *, host: str) -> DockerError:
    """A failure to reach the daemon: a permission problem, or no daemon at all."""
    text = " ".join(str(e) for e in _chain(exc))
    if _errno_in(exc, {errno.EACCES, errno.EPERM}) or _PERMISSION.search(text):
        return DockerPermissionError(
            f"permission denied talking to the Docker daemon at {host}", stderr_snippet=text[-500:]
        )
    return DockerUnavailableError(
        f"no Docker daemon answers at {host}: {_connection_reason(exc, host)}",
        stderr_snippet=text[-500:],
    )


@dataclass
class Failure:
    """Everything known about a failed container run, for ``classify``."""

    experiment_id: str
    exchange_dir: str
    image: str
    backend: str = ""
    phase: str = "run"
    exc: BaseException | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    error: ErrorInfo | None = None
    logs: str = ""
    gpu_requested: bool = False
    timeout_s: float | None = None


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return int(code) if isinstance(code, int) else None


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def classify(f: Failure) -> DockerError:
    """Map a failed run to the most specific ``DockerError``; structured signals first."""
    kept = f"its files are kept in {f.exchange_dir}"
    who = f"experiment {f.experiment_id}"
    common: dict[str, Any] = {
        "stderr_snippet": _tail(f.logs),
        "exchange_dir": f.exchange_dir,
        "image": f.image,
        "exit_code": f.exit_code,
    }
    if f.phase == "timeout":
        return ContainerTimeoutError(
            f"{who} ran past timeout_s={f.timeout_s} in its container, which was killed and "
            f"removed; {kept}",
            **common,
        )
    exc = f.exc
    if exc is not None:
        name = type(exc).__name__
        status = _status(exc)
        text = str(getattr(exc, "explanation", None) or exc)
        if name == "ImageNotFound" or (f.phase == "pull" and name in ("NotFound", "APIError")):
            return ImagePullError(
                f"image {f.image!r} for {who} is not on this machine and could not be pulled "
                f"({text.strip()[:300]}); {kept}",
                fix=image_fix(f.image, f.backend),
                **common,
            )
        if f.gpu_requested and (status in (None, 500) and _GPU_DRIVER.search(text)):
            return GPUAccessError(
                f"{who} asked for GPUs but the Docker daemon cannot provide them: "
                f"{text.strip()[:300]}; {kept}",
                **common,
            )
        if (status is None and isinstance(exc, OSError)) or (
            status in (None, 403) and _PERMISSION.search(text)
        ):
            conn = classify_connection(exc, host="the configured DOCKER_HOST")
            conn.exchange_dir = f.exchange_dir
            conn.image = f.image
            return conn
        return ContainerError(
            f"{who}: Docker refused the container ({name}, HTTP {status}): {text.strip()[:300]}; "
            f"{kept}",
            fix="check the runner's options (image, memory_limit, volumes) and the daemon log",
            error_type=name,
            **common,
        )
    err = f.error
    log_oom = bool(_OOM_TEXT.search(_tail(f.logs, 50)))
    if f.oom_killed or (err is not None and (_oom_in(err) or log_oom)):
        where = "the container's memory limit" if f.oom_killed else "memory"
        said = f": {err.type}: {err.message.strip()[:200]}" if err is not None else ""
        return OOMError(
            f"{who} ran out of {where} (exit code {f.exit_code}){said}; {kept}",
            remote_traceback=err.traceback if err else None,
            error_type=err.type if err else "OOMKilled",
            **common,
        )
    if f.exit_code == 124:
        return ContainerTimeoutError(
            f"{who} timed out inside its container (exit code 124); {kept}", **common
        )
    if err is not None:
        return ContainerError(
            f"{who} failed in its container: {err.type}: {err.message}; {kept}",
            fix=err.fix or f"read the traceback below and output.log in {f.exchange_dir}",
            error_type=err.type,
            remote_traceback=err.traceback,
            category=err.category if err.category not in ("", "error") else "crashed",
            **common,
        )
    if _OOM_TEXT.search(f.logs):
        return OOMError(
            f"{who} ran out of memory (the container log says so; exit code {f.exit_code}); {kept}",
            error_type="OutOfMemory",
            **common,
        )
    how = "was killed (SIGKILL)" if f.exit_code == 137 else f"exited with code {f.exit_code}"
    return ContainerError(
        f"{who}: the container {how} without a result; {kept}",
        fix=f"read output.log in {f.exchange_dir}; check the image runs "
        "`python -m llem_nb.runners.entrypoint` as its command",
        error_type="ContainerExited",
        **common,
    )


_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*)(?::\s|$)")


def _oom_in(err: ErrorInfo) -> bool:
    """The error file says out of memory: by the exception's type or message, or by any
    exception line of its traceback (a cause it was raised from, or during)."""
    if err.type in _OOM_TYPES or _OOM_TEXT.search(err.message):
        return True
    for line in (err.traceback or "").splitlines():
        found = _EXCEPTION_LINE.match(line)
        if found and (found.group(1) in _OOM_TYPES or _OOM_TEXT.search(line)):
            return True
    return False


def image_fix(image: str, backend: str = "") -> str:
    """What makes ``image`` present: llem_nb's own names are built here, not pulled (no
    registry hosts them); any other image is pulled, or loaded from a saved file."""
    if is_default_name(image):
        build = build_command(image, backend) if backend else "llem-nb images build <backend>"
        return (
            f"build it here: {build} (llem_nb's images are built on the host from a "
            "wheelhouse, not pulled); or bring a saved copy: llem-nb images load FILE"
        )
    return (
        f"docker pull {image} (docker login first if its registry is private), or load a "
        "saved copy: llem-nb images load FILE"
    )
