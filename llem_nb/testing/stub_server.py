"""A small OpenAI-compatible server on loopback that streams tokens at a programmable rate.

For tests and benchmarks of the load generator and the serving path, with no model: it
answers ``/health``, ``/version``, ``/v1/models``, ``/metrics`` (vLLM's running/waiting
gauges) and streaming ``/v1/completions`` (one chunk per token, ``" tok"``, then a usage
chunk when ``stream_options.include_usage`` is set). Prompt tokens are whitespace words.
Runs in-process on its own thread (``with StubServer() as s: s.base_url``), or as a
process: ``python -m llem_nb.testing.stub_server --port 8123``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import threading
from typing import Any


class StubServer:
    """``tokens_per_s`` per request (inf: no pacing); ``ttft_s`` before the first token;
    ``max_running``: at most this many streaming at once (the rest wait, as in a server's
    queue); ``die_after``: drop the connection of every request after that many;
    ``exit_after``: end the whole process at that request (a server dying mid-run)."""

    def __init__(
        self,
        *,
        tokens_per_s: float = math.inf,
        ttft_s: float = 0.0,
        max_running: int | None = None,
        die_after: int | None = None,
        exit_after: int | None = None,
        version: str = "stub-1.0",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.tokens_per_s, self.ttft_s = tokens_per_s, ttft_s
        self.max_running, self.die_after, self.version = max_running, die_after, version
        self.exit_after = exit_after
        self.host, self.port = host, port
        self.received = 0
        self.running = 0
        self.waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _app(self) -> Any:
        from aiohttp import web  # noqa: PLC0415 - the serving extra, kept off import

        gate = asyncio.Semaphore(self.max_running) if self.max_running else None

        async def health(_request: web.Request) -> web.Response:
            return web.Response(text="")

        async def version(_request: web.Request) -> web.Response:
            return web.json_response({"version": self.version})

        async def models(_request: web.Request) -> web.Response:
            return web.json_response(
                {"object": "list", "data": [{"id": "stub", "object": "model"}]}
            )

        async def metrics(_request: web.Request) -> web.Response:
            text = (
                f'vllm:num_requests_running{{model_name="stub"}} {float(self.running)}\n'
                f'vllm:num_requests_waiting{{model_name="stub"}} {float(self.waiting)}\n'
            )
            return web.Response(text=text)

        async def stream(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            n = int(body.get("max_tokens") or 16)
            gap = 0.0 if math.isinf(self.tokens_per_s) else 1.0 / self.tokens_per_s
            if self.ttft_s:
                await asyncio.sleep(self.ttft_s)
            for i in range(n):
                if i and gap:
                    await asyncio.sleep(gap)
                chunk = {"object": "text_completion", "choices": [{"index": 0, "text": " tok"}]}
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if (body.get("stream_options") or {}).get("include_usage"):
                words = len(str(body.get("prompt", "")).split())
                usage = {"prompt_tokens": words, "completion_tokens": n}
                final = {"object": "text_completion", "choices": [], "usage": usage}
                await response.write(b"data: " + json.dumps(final).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            return response

        async def completions(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            self.received += 1
            if self.exit_after is not None and self.received >= self.exit_after:
                os._exit(3)
            if self.die_after is not None and self.received > self.die_after:
                if request.transport is not None:
                    request.transport.close()
                raise ConnectionResetError("stub server dropped the request")
            self.waiting += 1
            if gate is not None:
                await gate.acquire()
            self.waiting -= 1
            self.running += 1
            try:
                return await stream(request, body)
            finally:
                self.running -= 1
                if gate is not None:
                    gate.release()

        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_get("/version", version)
        app.router.add_get("/v1/models", models)
        app.router.add_get("/metrics", metrics)
        app.router.add_post("/v1/completions", completions)
        return app

    async def _serve(self) -> None:
        from aiohttp import web  # noqa: PLC0415 - the serving extra, kept off import

        runner = web.AppRunner(self._app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def start(self) -> StubServer:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="llem-stub-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("stub server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10.0)
            self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the stub OpenAI-compatible API.")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--tokens-per-s", type=float, default=math.inf)
    parser.add_argument("--ttft-s", type=float, default=0.0)
    parser.add_argument("--exit-after", type=int, default=None, help="exit after N requests")
    args = parser.parse_args(argv)
    stub = StubServer(
        tokens_per_s=args.tokens_per_s, ttft_s=args.ttft_s, port=args.port,
        exit_after=args.exit_after,
    )  # fmt: skip
    asyncio.run(stub._serve())


if __name__ == "__main__":
    main()
