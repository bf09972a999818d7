"""``timeout_s`` in the kernel: the backends stop generating at the experiment's deadline
and the local runner reports a timeout. Time is a stepping clock: each reading is 1 s on."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.backends.deadline import enforce
from llem_nb.runners.local import LocalRunner
from llem_nb.study.study import Study
from tests.support.fake import fake_fields


class SteppingClock:
    """Every reading is one second after the last: a deadline of N s passes at the N-th check."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_local_runner_ends_an_experiment_past_timeout_s_as_timeout(
    fake_backend: str, tmp_path: Path
) -> None:
    fields = fake_fields(fake_backend, baseline={"seconds": 0}, timeout_s=5.0)
    study = Study("t", **fields).sweep(max_output_tokens=[1000])
    res = study.run(runner=LocalRunner(clock=SteppingClock()), results_dir=tmp_path, progress=False)
    [slow] = res.results
    assert slow.status == "failed" and slow.error is not None
    assert slow.error.category == "timeout"
    assert "timeout_s=5.0" in slow.error.message
    assert res.df["error_category"].tolist() == ["timeout"]


def test_an_experiment_within_timeout_s_is_ok(fake_backend: str, tmp_path: Path) -> None:
    fields = fake_fields(fake_backend, baseline={"seconds": 0}, timeout_s=10_000.0)
    res = Study("t", **fields).run(
        runner=LocalRunner(clock=SteppingClock()), results_dir=tmp_path, progress=False
    )
    assert [r.status for r in res.results] == ["ok"]
    assert res.results[0].output_tokens == 2 * 2  # two prompts, every token generated


def test_pytorch_generate_stops_at_the_deadline(tiny_model_dir: Path) -> None:
    pytest.importorskip("transformers")
    from llem_nb.backends.pytorch import PytorchBackend
    from llem_nb.config.experiment import ExperimentConfig

    config = ExperimentConfig(
        model=tiny_model_dir,
        precision="fp32",
        gpus=0,
        batch_size=1,
        max_output_tokens=24,
        pytorch={"num_threads": 1},
    )
    backend = PytorchBackend(config)
    backend.load()
    try:
        prompts = ["The energy of a graphics card", "Stars are born in clouds of gas"]
        full = backend.generate(prompts)
        with enforce(3.0, SteppingClock()) as deadline:
            cut = backend.generate(prompts)
    finally:
        backend.unload()
    assert deadline is not None and deadline.hit
    assert max(r.output_tokens for r in full.requests) > 3
    assert len(cut.requests) == 1  # the second batch never started
    assert cut.requests[0].output_tokens <= 3


def test_vllm_aborts_its_requests_at_the_deadline(tmp_path: Path) -> None:
    from llem_nb.backends.vllm import VllmBackend
    from llem_nb.config.experiment import validate_experiment
    from llem_nb.testing import tiny_model
    from llem_nb.testing.vllm import fake_vllm

    model = tiny_model(tmp_path / "tiny32", head_dim=32)
    config = validate_experiment(
        {"model": model, "backend": "vllm", "batch_size": 2, "max_output_tokens": 40}
    )
    prompts = ["a b c d e f g h i j k l m n o p q r s t"] * 4
    with fake_vllm(step_s=0.01, host_delay_s=0.0) as fake:
        backend = VllmBackend(config, clock=fake.clock)
        backend.load()
        try:
            with enforce(0.035, fake.clock) as deadline:
                out = backend.generate(prompts)
            engine = fake.llms[0].llm_engine
            assert not engine.has_unfinished_requests()
        finally:
            backend.unload()
    assert deadline is not None and deadline.hit
    assert engine.steps == 4  # 0.035 s of 0.01-s steps: the fourth step saw it pass
    assert [r.output_tokens for r in out.requests] == [4, 4, 0, 0]
