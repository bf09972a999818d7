"""Docker SDK errors and ``Failure`` records as the classifier sees them, for its tests.

Import only after ``pytest.importorskip("docker")``: the SDK is imported on use.
"""

from __future__ import annotations

from typing import Any

from llem_nb.results.schema import ErrorInfo
from llem_nb.runners.docker.classify import Failure

OURS = "ghcr.io/llem-nb/pytorch:0.1.0-cuda12"


def api_error(message: str, status: int | None, cls: type | None = None) -> Any:
    """The SDK's ``APIError`` (or ``cls``) as a daemon reply with ``status`` (None: no reply)."""
    import requests
    from docker.errors import APIError

    kind = cls or APIError
    if status is None:
        return kind(message)
    response = requests.Response()
    response.status_code = status
    return kind(f"{status} Server Error", response=response, explanation=message)


def failure(**fields: Any) -> Failure:
    """A failure of experiment ``abc123def456`` on our pytorch image; ``fields`` override."""
    base: dict[str, Any] = {
        "experiment_id": "abc123def456",
        "exchange_dir": "/tmp/llem-abc123def456-x",
        "image": OURS,
        "backend": "pytorch",
    }
    return Failure(**{**base, **fields})


def info(type_: str, message: str, **kw: Any) -> ErrorInfo:
    """The error a worker reported, its traceback ending in ``type_: message``."""
    return ErrorInfo(type=type_, message=message, traceback=f"Traceback\n{type_}: {message}", **kw)
