"""Issue 24 item 3 in a real container: run as a uid the image has no passwd entry for (as
the Docker runner does with the host's uid:gid), ``getpass.getuser()`` — what Inductor and
Triton call for their cache dirs — needs the runner's ``USER_ENV``."""

from __future__ import annotations

import pytest

from llem_nb.runners.docker.container import USER_ENV

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration
UNKNOWN = "54321:54321"
GETUSER = ["python", "-c", "import getpass; print(getpass.getuser())"]


def _run(engine: Engine, env: dict[str, str]) -> tuple[int, str]:
    container = engine.client.containers.run(
        engine.image, GETUSER, user=UNKNOWN, environment=env, network_mode="none", detach=True
    )
    try:
        code = int(container.wait(timeout=120)["StatusCode"])
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_getuser_fails_as_an_unknown_uid_without_the_runners_environment(
    docker_engine: Engine,
) -> None:
    code, logs = _run(docker_engine, {})
    assert code != 0, logs


def test_getuser_names_the_user_with_the_runners_environment(docker_engine: Engine) -> None:
    code, logs = _run(docker_engine, dict(USER_ENV))
    assert code == 0, logs
    assert logs.strip().splitlines()[-1] == USER_ENV["USER"]
