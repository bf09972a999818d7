"""FakeBackend: a backend with known token counts and step timings, and no model at all.

Register it with ``use_fake_backend()`` and set ``model`` to anything.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any, ClassVar

from llem_nb.backends import deadline
from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput, key_of
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import register_backend
from llem_nb.energy.nvml_devices import visible_nvml_indices
from llem_nb.errors import BackendError

FAKE_BACKEND = "fake"
CRASH_EXIT_CODE = 70


class FakeBackend(Backend):
    """Each request: input = its word count, output = ``max_output_tokens``, fixed step time.

    ``step_s`` is the time per decoding step; ``fail_on`` (set on the class or via
    env ``LLEM_FAKE_FAIL=load|generate``) makes that stage raise, for fault tests;
    env ``LLEM_FAKE_ALLOC_MB`` makes ``load`` allocate and touch that much RAM (OOM tests);
    env ``LLEM_FAKE_PIDFILE`` makes ``generate`` append its process id to that file first,
    so a test can find (and kill) the process running an experiment; env
    ``LLEM_FAKE_CRASH_ONCE=PATH`` makes ``generate`` delete that file and exit the process
    at once (exit code 70) when the file exists: one crash, then normal runs; env
    ``LLEM_FAKE_GPUS=1`` makes it report the GPUs its ``gpus`` selects among those NVML
    sees (as a GPU backend does), so the meter measures them. Like the real
    backends it stops decoding once the experiment's deadline (``timeout_s``) has passed.
    """

    name: ClassVar[str] = FAKE_BACKEND
    step_s: ClassVar[float] = 0.0
    fail_on: ClassVar[str | None] = None

    def _maybe_fail(self, stage: str) -> None:
        if stage in (self.fail_on, os.environ.get("LLEM_FAKE_FAIL")):
            raise BackendError(f"fake backend asked to fail in {stage}", fix="unset LLEM_FAKE_FAIL")

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        return None

    @classmethod
    def load_key(cls, config: ExperimentConfig) -> str | None:
        """Model and precision: points that differ in anything else share one load."""
        return key_of({"backend": cls.name, "model": config.model, "precision": config.precision})

    def load(self) -> None:
        self._maybe_fail("load")
        megabytes = int(os.environ.get("LLEM_FAKE_ALLOC_MB", "0"))
        self._ballast = bytearray(megabytes * 2**20)
        for i in range(0, len(self._ballast), 4096):
            self._ballast[i] = 1

    def gpu_indices(self) -> list[int]:
        """[] (it computes on the CPU) unless ``LLEM_FAKE_GPUS=1``: then the NVML indices of
        the GPUs ``gpus`` selects among the visible ones."""
        gpus = self.config.gpus
        if os.environ.get("LLEM_FAKE_GPUS") != "1" or gpus == 0:
            return []
        visible = visible_nvml_indices(None, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if isinstance(gpus, int):
            return visible[:gpus]
        if isinstance(gpus, list):
            return [visible[int(g)] for g in gpus]
        return visible

    def generate(self, prompts: list[str]) -> GenerationOutput:
        self._maybe_fail("generate")
        crash = os.environ.get("LLEM_FAKE_CRASH_ONCE")
        if crash and os.path.exists(crash):
            os.unlink(crash)
            os._exit(CRASH_EXIT_CODE)
        pidfile = os.environ.get("LLEM_FAKE_PIDFILE")
        if pidfile:
            with open(pidfile, "a") as fh:
                fh.write(f"{os.getpid()}\n")
        requests: list[RequestOutput] = []
        steps = self.config.max_output_tokens
        step_s = self.step_s or float(os.environ.get("LLEM_FAKE_STEP_S", "0"))
        phases: list[tuple[float, float]] = []
        for start in range(0, len(prompts), self.config.batch_size):
            batch = prompts[start : start + self.config.batch_size]
            t0 = time.perf_counter()
            stamps = []
            for _ in range(steps):
                if step_s:
                    time.sleep(step_s)
                stamps.append(time.perf_counter())
                if deadline.passed():
                    break
            phases.append((t0, stamps[0]))
            for prompt in batch:
                requests.append(
                    RequestOutput(
                        input_tokens=min(len(prompt.split()), self.config.max_input_tokens),
                        output_tokens=len(stamps),
                        e2e_s=stamps[-1] - t0,
                        ttft_s=stamps[0] - t0,
                        itl_s=[b - a for a, b in itertools.pairwise(stamps)],
                    )
                )
        return GenerationOutput(requests=requests, batching="static", phases=phases)

    def environment(self) -> dict[str, Any]:
        return {"backend_impl": "fake"}


def use_fake_backend() -> str:
    """Register ``FakeBackend`` under the backend name ``fake``; returns that name."""
    register_backend(FAKE_BACKEND, "llem_nb.testing.backend:FakeBackend")
    return FAKE_BACKEND


__all__ = ["FAKE_BACKEND", "FakeBackend", "use_fake_backend"]
