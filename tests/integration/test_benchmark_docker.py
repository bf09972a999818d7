"""``benchmarks/docker_dispatch.py --smoke`` on the private Docker engine and CPU image."""

from __future__ import annotations

import pytest

from tests.test_benchmarks import run_smoke

from .docker_engine import Engine, docker_engine_fixture  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration


def test_docker_dispatch_runs_at_smoke_size(docker_engine: Engine) -> None:
    done = run_smoke(
        "docker_dispatch.py", DOCKER_HOST=docker_engine.host, LLEM_BENCH_IMAGE=docker_engine.image
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio DockerRunner / docker run --rm IMG true" in done.stdout, done.stdout
