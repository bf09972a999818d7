"""A simulated GPU workload: a backend whose work is power on simulated GPUs, in virtual time.

``SimWorkload`` ties a ``SimClock``, a ``FakeNvml`` whose GPUs follow ``LiveTrace``s, and
the shape of the work (prefill burst, decode steps, power levels). ``SimBackend`` runs it:
each batch raises every GPU to ``prefill_w`` for ``prefill_s``, then to ``decode_w`` for
the decode steps, and marks the boundaries as a real backend does; when ``generate``
returns the GPUs are idle again. Put through the real ``Harness`` and ``NvmlMeter``, it
measures the whole path (baseline, window, repeats, net, phase split) against integrals
of the very traces it drew.

    work = SimWorkload.make(gpus=2, counter_update_s=0.1)
    result = work.harness(config).run(config)

``SimRunner`` is the local runner on such a machine, so whole studies (the run loop,
model reuse, baselines kept between windows) run in virtual time:
``study.run(runner=SimRunner(work))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput, key_of
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.config.plugins import register_backend
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.measure.harness import Harness
from llem_nb.measure.reuse import ModelKeeper
from llem_nb.results.schema import ExperimentResult
from llem_nb.runners.local import LocalRunner
from llem_nb.testing.clock import SimClock
from llem_nb.testing.nvml import FakeGpu, FakeNvml
from llem_nb.testing.traces import LiveTrace

SIM_BACKEND = "sim"


def sim_config(**over: Any) -> ExperimentConfig:
    """A small static-batch experiment on the ``sim`` backend (2 batches per pass);
    ``over`` replaces top-level fields."""
    base: dict[str, Any] = {
        "model": "sim",
        "backend": use_sim_backend(),
        "n_prompts": 8,
        "batch_size": 4,
        "max_output_tokens": 40,
        "gpus": 1,
    }
    return validate_experiment({**base, **over})


@dataclass
class SimWorkload:
    """The simulated machine and the shape of its work (see the module docstring)."""

    clock: SimClock
    nvml: FakeNvml
    traces: list[LiveTrace]
    idle_w: list[float]
    prefill_s: float = 0.05
    step_s: float = 0.02
    prefill_w: float = 450.0
    decode_w: float = 300.0
    load_s: float = 0.0
    marks: list[tuple[str, float]] = field(default_factory=list)
    phases: list[tuple[float, float]] = field(default_factory=list)
    last_meter: NvmlMeter | None = None
    loads: int = 0
    unloads: int = 0

    @classmethod
    def make(
        cls,
        *,
        gpus: int = 1,
        idle_w: float | list[float] = 100.0,
        prefill_s: float = 0.05,
        step_s: float = 0.02,
        prefill_w: float = 450.0,
        decode_w: float = 300.0,
        load_s: float = 0.0,
        **gpu: Any,
    ) -> SimWorkload:
        """``gpus`` simulated GPUs (``FakeGpu`` fields in ``gpu``, applied to each; counter
        phases spread so no two GPUs tick together). ``load_s``: what loading the model
        takes, in simulated seconds (the GPUs idle meanwhile)."""
        clock = SimClock()
        idle = list(idle_w) if isinstance(idle_w, list) else [float(idle_w)] * gpus
        traces = [LiveTrace(w) for w in idle]
        devices = []
        for k, trace in enumerate(traces):
            options = {"counter_phase_s": 0.0137 + 0.0371 * k, **gpu}
            devices.append(
                FakeGpu(
                    name=options.pop("name", "NVIDIA H100 80GB HBM3"),
                    uuid=f"GPU-{k:08x}-5151-4242-9999-000000000000",
                    power_w=trace,
                    **options,
                )
            )
        nvml = FakeNvml(devices, clock=clock)
        return cls(clock, nvml, traces, idle, prefill_s, step_s, prefill_w, decode_w, load_s)

    def now(self) -> float:
        """Seconds on the simulator's timeline (where the traces live)."""
        return self.nvml.now()

    def set_power(self, watts: float | None) -> None:
        """Every GPU to ``watts`` from now on (None: back to each one's idle power)."""
        t = self.now()
        for trace, idle in zip(self.traces, self.idle_w, strict=True):
            trace.set(t, idle if watts is None else watts)

    def energy_j(self, t0: float, t1: float, gpu: int | None = None) -> float:
        """The traces' exact integral over clock instants [t0, t1] (one GPU or all)."""
        a, b = self.nvml.elapsed(t0), self.nvml.elapsed(t1)
        chosen = self.traces if gpu is None else [self.traces[gpu]]
        return sum(trace.integral(a, b) for trace in chosen)

    def meter(self, **options: Any) -> NvmlMeter:
        """An ``NvmlMeter`` on every simulated GPU, on the simulation's clock."""
        self.last_meter = NvmlMeter(
            list(range(len(self.nvml.gpus))), nvml=self.nvml, clock=self.clock, **options
        )
        return self.last_meter

    def window(self) -> tuple[float, float]:
        """The last measured window's edges (clock instants), from the meter that took it."""
        if self.last_meter is None:
            raise RuntimeError("no meter yet: call harness() or meter() first")
        return self.last_meter.window_edges

    def prefill_energy_j(self, t0: float, t1: float) -> float:
        """Exact energy of every GPU during the prefill phases inside [t0, t1]."""
        return sum(
            self.energy_j(max(a, t0), min(b, t1)) for a, b in self.phases if min(b, t1) > max(a, t0)
        )

    def harness(self, config: ExperimentConfig, **meter_options: Any) -> Harness:
        """The real Harness with a ``SimBackend`` and an ``NvmlMeter`` on this machine."""
        use_sim_backend()
        return Harness(SimBackend(config, self), self.meter(**meter_options), clock=self.clock)


class SimBackend(Backend):
    """Static batches of simulated work: prefill burst, then one decode step per token."""

    name: ClassVar[str] = SIM_BACKEND
    phase_marker: Callable[[str, float], None] | None = None

    def __init__(self, config: ExperimentConfig, workload: SimWorkload | None = None) -> None:
        super().__init__(config)
        if workload is None:
            raise TypeError("SimBackend needs a SimWorkload: SimWorkload.make().harness(config)")
        self.work = workload

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        return None

    @classmethod
    def load_key(cls, config: ExperimentConfig) -> str | None:
        return key_of({"backend": cls.name, "model": config.model, "precision": config.precision})

    def load(self) -> None:
        self.work.clock.sleep(self.work.load_s)
        self.work.loads += 1

    def unload(self) -> None:
        self.work.unloads += 1

    def _mark(self, label: str, t: float) -> None:
        self.work.marks.append((label, t))
        if self.phase_marker is not None:
            self.phase_marker(label, t)

    def generate(self, prompts: list[str]) -> GenerationOutput:
        work, clock = self.work, self.work.clock
        steps = self.config.max_output_tokens
        out = GenerationOutput(requests=[], batching="static")
        for first in range(0, len(prompts), self.config.batch_size):
            batch = prompts[first : first + self.config.batch_size]
            start = clock.now()
            work.set_power(work.prefill_w)
            self._mark("batch_start", start)
            clock.sleep(work.prefill_s)
            first_token = clock.now()
            work.set_power(work.decode_w)
            self._mark("first_token", first_token)
            clock.sleep(work.step_s * (steps - 1))
            end = clock.now()
            out.phases.append((start, first_token))
            work.phases.append((start, first_token))
            itl = [work.step_s] * (steps - 1)
            for prompt in batch:
                out.requests.append(
                    RequestOutput(
                        input_tokens=min(len(prompt.split()), self.config.max_input_tokens),
                        output_tokens=steps,
                        e2e_s=end - start,
                        ttft_s=first_token - start,
                        itl_s=list(itl),
                    )
                )
        work.set_power(None)
        return out

    def gpu_indices(self) -> list[int]:
        return list(range(len(self.work.traces)))

    def environment(self) -> dict[str, Any]:
        return {"backend_impl": "simulated"}


def use_sim_backend() -> str:
    """Register ``SimBackend`` as backend ``sim`` in this process; returns the name."""
    register_backend(SIM_BACKEND, SimBackend, child_processes=False)
    return SIM_BACKEND


class SimRunner(LocalRunner):
    """The local runner on a ``SimWorkload``: the real Harness, ``ModelKeeper`` and
    ``NvmlMeter``, a ``SimBackend`` per loaded model, all in the workload's virtual time."""

    name: ClassVar[str] = "sim"

    def __init__(self, work: SimWorkload, **meter_options: Any) -> None:
        super().__init__()
        use_sim_backend()
        self.work = work
        self.meter_options = meter_options
        self.keeper = ModelKeeper(make_backend=lambda config: SimBackend(config, work))

    def harness(self, config: ExperimentConfig, keeper: ModelKeeper | None) -> Harness:
        meter = self.work.meter(**self.meter_options)
        if keeper is None:
            return Harness(SimBackend(config, self.work), meter, clock=self.work.clock)
        return Harness(meter=meter, clock=self.work.clock, keeper=keeper)

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        try:
            return super()._execute(config, cycle=cycle, study=study)
        finally:
            if self.work.last_meter is not None:
                self.work.last_meter.close()
