"""A serving backend whose server is the stub (``stub_server``), run as a managed process.

The whole serving path — server process under the guard, health wait, load generator,
meter, steady state, teardown — with no model: ``use_stub_server_backend()`` registers it
as ``stub-server``; ``stub_server.*`` keys set the stub's token rate, time to first
token, and ``exit_after`` (the server dies at that request). ``health_timeout_s`` and
``never_healthy`` exercise a server that never comes up; ``kill_client_after_load``
SIGKILLs the experiment's own process once the server is up (the guard must then stop it).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from llem_nb.backends.serving.backend import ServingBackend
from llem_nb.backends.serving.server import ManagedServer, engine_version
from llem_nb.config.plugins import register_backend

STUB_BACKEND = "stub-server"


class StubServerSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens_per_s: float = 1000.0
    ttft_s: float = 0.0
    exit_after: int | None = None
    never_healthy: bool = False
    health_timeout_s: float = 30.0
    kill_client_after_load: bool = False


class StubServerBackend(ServingBackend):
    name: ClassVar[str] = STUB_BACKEND
    config_section: ClassVar[type[BaseModel] | None] = StubServerSection

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.server: ManagedServer | None = None

    def _section(self) -> StubServerSection:
        section: StubServerSection = self.config.section(STUB_BACKEND)
        return section

    def load(self) -> None:
        s = self._section()

        def argv(port: int) -> list[str]:
            if s.never_healthy:
                return [sys.executable, "-c", "import time; time.sleep(600)"]
            out = [sys.executable, "-m", "llem_nb.testing.stub_server", "--port", str(port)]
            out += ["--tokens-per-s", str(s.tokens_per_s), "--ttft-s", str(s.ttft_s)]
            if s.exit_after is not None:
                out += ["--exit-after", str(s.exit_after)]
            return out

        self.server = ManagedServer(argv, health_timeout_s=s.health_timeout_s)
        self.server.start()
        self.base_url = self.server.base_url
        self.served_model = "stub"
        self.engine_version = engine_version(self.base_url)
        if s.kill_client_after_load:
            os.kill(os.getpid(), signal.SIGKILL)

    def check_alive(self) -> None:
        if self.server is not None:
            self.server.check_alive()

    def environment(self) -> dict[str, Any]:
        return {"server_external": False, "engine_version": self.engine_version}

    def unload(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()


def use_stub_server_backend() -> str:
    """Register ``StubServerBackend`` as ``stub-server`` (a serving backend, in child
    processes too); its name."""
    register_backend(STUB_BACKEND, StubServerBackend, section=StubServerSection)
    return STUB_BACKEND
