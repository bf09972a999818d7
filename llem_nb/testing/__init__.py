"""Shipped test doubles, so users can test their own studies and tools without a GPU.

- ``FakeNvml`` / ``FakeGpu``: an NVML simulator driven by a device model (energy counter
  updating in steps, averaged power, read latency, clocks, throttling, ECC, XID, MIG).
- ``SimPowercap``: a powercap (RAPL) tree in a directory, counters advancing by traces.
- ``SimClock``: virtual time for the meter, the harness and the simulator.
- traces (``constant``, ``ramp``, ``steps``, ``prefill_decode``, ``LiveTrace`` …): power
  curves with exact integrals, to check a meter against.
- ``tiny_model(dir)``: a deterministic tiny random Llama with a trained tokenizer.
- ``FakeBackend``: a backend with known token counts and step timings, no model at all;
  register it with ``use_fake_backend()`` and set ``model`` to anything.
- ``StubServer``: an OpenAI-compatible server on loopback streaming tokens at a set rate
  (needs aiohttp); ``use_stub_server_backend()`` registers ``stub-server``, a serving
  backend that runs it as a managed process.
"""

from __future__ import annotations

from llem_nb.backends.models import tiny_model
from llem_nb.testing.backend import FAKE_BACKEND, FakeBackend, use_fake_backend
from llem_nb.testing.clock import SimClock
from llem_nb.testing.nvml import FakeGpu, FakeNvml
from llem_nb.testing.powercap import SimPowercap
from llem_nb.testing.stub_backend import use_stub_server_backend
from llem_nb.testing.stub_server import StubServer
from llem_nb.testing.traces import (
    LiveTrace,
    Trace,
    constant,
    numeric,
    prefill_decode,
    ramp,
    spikes,
    steps,
)

__all__ = [
    "FAKE_BACKEND",
    "FakeBackend",
    "FakeGpu",
    "FakeNvml",
    "LiveTrace",
    "SimClock",
    "SimPowercap",
    "StubServer",
    "Trace",
    "constant",
    "numeric",
    "prefill_decode",
    "ramp",
    "spikes",
    "steps",
    "tiny_model",
    "use_fake_backend",
    "use_stub_server_backend",
]
