"""PyTorch step times on an asynchronous device: CUDA events, converted after generate.

``SimulatedDevice`` stands in for a GPU at the ``torch.cuda`` boundary: the host queues
a step in ``launch_s`` and goes on; the device runs queued steps in order (a prefill
forward takes ``prefill_s``, a decode forward ``decode_s``); before queueing the next
forward the host waits for the previous one (``generate`` synchronises once per step).
Events complete when the work queued before them has. The tiny model runs for real on
the CPU; a forward pre-hook queues each forward's simulated work. Expected times are
worked out by hand from those rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llem_nb.backends._step_timing import CudaStepTimer, HostStepTimer, StepClock
from llem_nb.backends.pytorch import PytorchBackend
from llem_nb.config.experiment import validate_experiment

PREFILL_S = 0.050
DECODE_S = 0.010
LAUNCH_S = 0.0002
T0 = 100.0


class SimulatedDevice:
    """One asynchronous device and the host clock that waits on it."""

    def __init__(self, prefill_s: float = PREFILL_S, decode_s: float = DECODE_S) -> None:
        self.host_s = T0
        self.idle_at_s = T0
        self.prefill_s, self.decode_s = prefill_s, decode_s
        self.syncs = 0
        self.forwards: list[float] = []

    def clock(self) -> float:
        return self.host_s

    def forward(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A forward pass queued: prefill when it sees more than one new token per row."""
        ids = kwargs.get("input_ids", args[0] if args else None)
        prefill = ids is not None and ids.shape[1] > 1
        self.host_s = max(self.host_s, self.idle_at_s)
        self.idle_at_s = self.host_s + (self.prefill_s if prefill else self.decode_s)
        self.forwards.append(self.idle_at_s)
        self.host_s += LAUNCH_S

    def synchronize(self, device: Any = None) -> None:
        self.syncs += 1
        self.host_s = max(self.host_s, self.idle_at_s)

    def current_stream(self, device: Any = None) -> str:
        return f"stream-{device}"

    def Event(self, enable_timing: bool = False) -> SimulatedEvent:
        assert enable_timing
        return SimulatedEvent(self)


class SimulatedEvent:
    """``torch.cuda.Event``: completes when the work queued before its record has."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self.at_s: float | None = None

    def record(self, stream: Any = None) -> None:
        self.at_s = self.device.idle_at_s

    def query(self) -> bool:
        return self.at_s is not None and self.at_s <= self.device.host_s

    def elapsed_time(self, end: SimulatedEvent) -> float:
        if not (self.query() and end.query()):
            raise RuntimeError("CUDA error: device not ready")
        assert self.at_s is not None and end.at_s is not None
        return (end.at_s - self.at_s) * 1000.0


def _backend(model: Path, timer: str, device: SimulatedDevice, **over: Any) -> PytorchBackend:
    config = validate_experiment(
        {"model": str(model), "precision": "fp32", "gpus": 0, "batch_size": 2,
         "max_output_tokens": 4, **over}
    )  # fmt: skip

    def make() -> Any:
        if timer == "cuda":
            return CudaStepTimer(0, cuda=device, clock=device.clock)
        return HostStepTimer(device.clock)

    backend = PytorchBackend(config, step_timer=make)
    backend.load()
    backend._model.register_forward_pre_hook(device.forward, with_kwargs=True)
    return backend


PROMPTS = ["one two three", "four five six seven", "eight nine", "ten eleven twelve"]


def test_ttft_is_the_prefill_completion_on_the_device(tiny_model_dir: Path) -> None:
    device = SimulatedDevice()
    marks: list[tuple[str, float]] = []
    backend = _backend(tiny_model_dir, "cuda", device)
    backend.phase_marker = lambda label, t: marks.append((label, t))
    try:
        out = backend.generate(PROMPTS)
    finally:
        backend.unload()
    for req in out.requests:
        n = req.output_tokens
        assert req.ttft_s == pytest.approx(PREFILL_S)
        assert req.itl_s == pytest.approx([DECODE_S] * (n - 1))
        assert req.e2e_s == pytest.approx(PREFILL_S + (n - 1) * DECODE_S)
    assert max(r.output_tokens for r in out.requests) == 4
    assert len(out.phases) == 2
    for start, first in out.phases:
        assert first - start == pytest.approx(PREFILL_S)
    first_batch_end = out.phases[0][0] + PREFILL_S + 3 * DECODE_S
    assert out.phases[1][0] == pytest.approx(first_batch_end)
    assert marks == [
        pair
        for start, first in out.phases
        for pair in (("batch_start", start), ("first_token", first))
    ], "phase marks must carry the phases' exact times (marks are matched to phases by time)"
    assert device.syncs == 2 * len(out.phases)


def test_host_stamps_on_an_asynchronous_device_miss_the_prefill(tiny_model_dir: Path) -> None:
    """What the host clock inside the stopping criterion gives on a GPU: the old method."""
    device = SimulatedDevice()
    backend = _backend(tiny_model_dir, "host", device, batch_size=4)
    try:
        out = backend.generate(PROMPTS)
    finally:
        backend.unload()
    req = max(out.requests, key=lambda r: r.output_tokens)
    assert req.ttft_s == pytest.approx(LAUNCH_S)
    assert req.itl_s[0] == pytest.approx(PREFILL_S)


def test_cuda_timer_converts_events_through_the_anchor() -> None:
    device = SimulatedDevice()
    device.host_s = device.idle_at_s = 10.0
    timer = CudaStepTimer(0, cuda=device, clock=device.clock)
    timer.begin()
    device.idle_at_s = 10.5
    timer.mark()
    assert timer.done(0) is None
    device.idle_at_s = 10.75
    timer.mark()
    device.host_s = 10.6
    assert timer.done(0) == pytest.approx(10.5)
    assert timer.done(1) is None
    with pytest.raises(RuntimeError, match="before finish"):
        timer.times()
    assert timer.finish() == pytest.approx(10.75)
    assert timer.times() == pytest.approx([10.5, 10.75])
    assert device.syncs == 2


def test_first_token_hint_waits_for_the_device_and_is_sent_once() -> None:
    device = SimulatedDevice()
    marks: list[tuple[str, float]] = []
    timer = CudaStepTimer(0, cuda=device, clock=device.clock)
    clock = StepClock(timer, lambda label, t: marks.append((label, t)))
    timer.begin()
    device.idle_at_s = T0 + PREFILL_S
    assert clock(None, None) is False
    assert marks == []
    device.synchronize()
    device.idle_at_s += DECODE_S
    clock(None, None)
    clock(None, None)
    assert marks == [("first_token", pytest.approx(T0 + PREFILL_S))]
    timer.finish()
    clock.flush(timer.times())
    assert len(marks) == 1


def test_single_step_generation_sends_the_hint_after_generate() -> None:
    device = SimulatedDevice()
    marks: list[tuple[str, float]] = []
    timer = CudaStepTimer(0, cuda=device, clock=device.clock)
    clock = StepClock(timer, lambda label, t: marks.append((label, t)))
    timer.begin()
    device.idle_at_s = T0 + PREFILL_S
    clock(None, None)
    timer.finish()
    clock.flush(timer.times())
    assert marks == [("first_token", pytest.approx(T0 + PREFILL_S))]


def test_host_timer_stamps_at_the_call() -> None:
    ticks = iter([1.0, 2.0, 3.5, 4.0])
    timer = HostStepTimer(lambda: next(ticks))
    timer.begin()
    timer.mark()
    assert timer.done(0) == 1.0 and timer.done(1) is None
    timer.mark()
    timer.mark()
    assert timer.finish() == 4.0
    assert timer.times() == [1.0, 2.0, 3.5]


def test_one_token_batches_mark_the_same_first_token_time_as_their_phase(
    tiny_model_dir: Path,
) -> None:
    device = SimulatedDevice()
    marks: list[tuple[str, float]] = []
    backend = _backend(tiny_model_dir, "cuda", device, max_output_tokens=1)
    backend.phase_marker = lambda label, t: marks.append((label, t))
    try:
        out = backend.generate(PROMPTS)
    finally:
        backend.unload()
    assert [t for label, t in marks if label == "first_token"] == [f for _, f in out.phases]
    assert [f - s for s, f in out.phases] == pytest.approx([PREFILL_S, PREFILL_S])
    assert [r.ttft_s for r in out.requests] == pytest.approx([PREFILL_S] * len(PROMPTS))
