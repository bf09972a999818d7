"""Every branch of ``classify`` and ``classify_connection``, field by field, against reviewed
expectations in data/classify_golden.json (type, message, fix, error type, category, log tail,
exchange dir, image, exit code, traceback): a changed word in what users read fails here."""

from __future__ import annotations

import builtins
import errno
import json
from pathlib import Path
from typing import Any

import pytest

docker = pytest.importorskip("docker")
requests = pytest.importorskip("requests")
from docker.errors import ImageNotFound, NotFound  # noqa: E402

from llem_nb.results.schema import ErrorInfo  # noqa: E402
from llem_nb.runners.docker.classify import Failure, classify, classify_connection  # noqa: E402
from tests.support import docker_failures as support  # noqa: E402
from tests.support.docker_failures import OURS, api_error, info  # noqa: E402

LONG = "x" * 400


def failure(**fields: Any) -> Failure:
    """A failure on a user's image with no backend named (the golden file's base)."""
    users = {"exchange_dir": "/x/ex", "image": "me/img:1", "backend": ""}
    return support.failure(**{**users, **fields})


class Wrapped(Exception):
    def __init__(self, reason: BaseException) -> None:
        super().__init__("max retries")
        self.reason = reason


CASES = {
    "pull_ours": lambda: classify(
        failure(
            phase="pull",
            image=OURS,
            backend="pytorch",
            exc=api_error(" not found " + LONG, 404, NotFound),
        )
    ),
    "pull_ours_no_backend": lambda: classify(
        failure(phase="pull", image=OURS, exc=ImageNotFound("gone"))
    ),
    "pull_users": lambda: classify(failure(phase="pull", exc=api_error("denied", 500))),
    "gpu": lambda: classify(
        failure(
            phase="start", gpu_requested=True, exc=api_error("nvidia-container-cli: " + LONG, 500)
        )
    ),
    "permission_403": lambda: classify(
        failure(phase="start", exc=api_error("permission denied", 403))
    ),
    "oserror": lambda: classify(
        failure(phase="start", exc=ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    ),
    "refused_api": lambda: classify(failure(phase="start", exc=api_error("bad " + LONG, 409))),
    "refused_500_perm_text": lambda: classify(
        failure(phase="start", exc=api_error("permission denied", 500))
    ),
    "oom_killed": lambda: classify(failure(exit_code=137, oom_killed=True, logs="a\nb\n")),
    "oom_error_file": lambda: classify(
        failure(exit_code=1, error=info("OutOfMemoryError", "  CUDA out of memory " + "y" * 300))
    ),
    "timeout_124": lambda: classify(failure(exit_code=124, logs="slow\n")),
    "error_file": lambda: classify(
        failure(exit_code=1, error=info("ValueError", "bad", category="error"), logs="  l1\nl2  \n")
    ),
    "error_file_fix_cat": lambda: classify(
        failure(exit_code=1, error=info("BackendError", "no", fix="do x", category="backend"))
    ),
    "error_file_empty_cat": lambda: classify(
        failure(exit_code=1, error=info("BackendError", "no", category=""))
    ),
    "log_oom": lambda: classify(failure(exit_code=1, logs="CUDA out of memory\n")),
    "sigkill": lambda: classify(failure(exit_code=137)),
    "exit_3": lambda: classify(failure(exit_code=3)),
    "conn_denied": lambda: classify_connection(
        requests.exceptions.ConnectionError(
            "aborted " + "z" * 600, builtins.PermissionError(errno.EACCES, "Permission denied")
        ),
        host="unix:///s.sock",
    ),
    "conn_refused_reason": lambda: classify_connection(
        Wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "nope")), host="tcp://h:1"
    ),
    "conn_missing_tcp": lambda: classify_connection(
        FileNotFoundError(errno.ENOENT, "No such file"), host="tcp://h:1"
    ),
    "conn_plain": lambda: classify_connection(
        RuntimeError("  " + "w" * 400 + " end "), host="tcp://h:1"
    ),
}


def describe(err: Any) -> dict[str, Any]:
    return {
        "type": type(err).__name__,
        "message": err.message,
        "fix": err.fix,
        "error_type": err.error_type,
        "category": err.category,
        "stderr_snippet": err.stderr_snippet,
        "exchange_dir": err.exchange_dir,
        "image": err.image,
        "exit_code": err.exit_code,
        "remote_traceback": err.remote_traceback,
    }


GOLDEN = json.loads((Path(__file__).parent / "data" / "classify_golden.json").read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_maps_to_the_reviewed_error(case: str) -> None:
    assert describe(CASES[case]()) == GOLDEN[case]


def test_the_cause_chain_is_walked_once_and_at_most_51_deep() -> None:
    from llem_nb.runners.docker.classify import _chain

    loop = RuntimeError("a")
    loop.__cause__ = loop
    assert _chain(loop) == [loop]
    deep: BaseException = OSError(errno.EPERM, "deep")
    for k in range(60):
        outer = RuntimeError(f"level {k}")
        outer.__cause__ = deep
        deep = outer
    assert len(_chain(deep)) == 51
    shallow: BaseException = PermissionError(errno.EPERM, "x")
    for k in range(49):
        outer = RuntimeError(f"level {k}")
        outer.__cause__ = shallow
        shallow = outer
    conn = classify_connection(shallow, host="tcp://h:1")
    assert type(conn).__name__ == "DockerPermissionError"
    both = RuntimeError("pair", ValueError("first"), Wrapped(KeyError("r")))
    assert [type(e).__name__ for e in _chain(both)] == [
        "RuntimeError", "Wrapped", "KeyError", "ValueError",
    ]  # fmt: skip


def test_an_oom_only_in_the_traceback_or_only_in_the_type_is_an_oom() -> None:
    by_type = info("OutOfMemoryError", "allocation failed")
    by_text = info("RuntimeError", "CUDA out of memory. Tried to allocate 2 GiB")
    in_traceback = ErrorInfo(
        type="EngineDeadError",
        message="engine died",
        traceback="Traceback\ntorch.OutOfMemoryError: tried to allocate\nEngineDeadError: x",
    )
    cause_type = ErrorInfo(
        type="EngineDeadError", message="engine died", traceback="Traceback\nMemoryError\n"
    )
    for error in (by_type, by_text, in_traceback, cause_type):
        assert describe(classify(failure(exit_code=1, error=error)))["type"] == "OOMError"
    plain = ErrorInfo(type="EngineDeadError", message="engine died", traceback=None)
    assert describe(classify(failure(exit_code=1, error=plain)))["type"] == "ContainerError"
