"""The PyTorch backend's measurement hooks on the tiny model: step clock, phase marks, FLOPs."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.backends.pytorch import PytorchBackend
from llem_nb.config.experiment import validate_experiment
from llem_nb.measure.environment import git_commit
from llem_nb.measure.flops import FLOPS_METHOD, flops_estimate
from llem_nb.measure.harness import Harness


def backend_for(model: Path, **over: object) -> PytorchBackend:
    config = validate_experiment(
        {"model": str(model), "precision": "fp32", "gpus": 0, "n_prompts": 5, "batch_size": 2,
         "max_output_tokens": 6, **over}
    )  # fmt: skip
    return PytorchBackend(config)


def test_step_clock_latencies_and_phase_marks(tiny_model_dir: Path) -> None:
    backend = backend_for(tiny_model_dir)
    marks: list[tuple[str, float]] = []
    backend.load()
    backend.phase_marker = lambda label, t: marks.append((label, t))
    try:
        out = backend.generate(["one", "two words", "three little words", "four", "five"])
    finally:
        backend.unload()
    assert len(out.phases) == 3
    assert marks == [
        pair
        for start, first in out.phases
        for pair in (("batch_start", start), ("first_token", first))
    ]
    for req in out.requests:
        assert req.ttft_s is not None and 0 < req.ttft_s <= req.e2e_s
        assert len(req.itl_s) == req.output_tokens - 1
        assert all(gap >= 0 for gap in req.itl_s)
        assert req.ttft_s + sum(req.itl_s) == pytest.approx(req.e2e_s)


def test_parameter_counts_and_flops(tiny_model_dir: Path) -> None:
    backend = backend_for(tiny_model_dir)
    backend.load()
    try:
        env = backend.environment()
        model = backend._model
        total = sum(p.numel() for p in model.parameters())
        embedding = model.get_input_embeddings().weight.numel()
    finally:
        backend.unload()
    assert env["parameters"] == total
    assert env["parameters_embedding"] == embedding and env["tied_embeddings"] is False
    assert env["parameters_for_flops"] == total - embedding
    assert flops_estimate(env["parameters_for_flops"], 100) == 2.0 * (total - embedding) * 100
    assert flops_estimate(None, 100) is None


def test_harness_records_flops_and_no_gpu_energy_on_cpu(tiny_model_dir: Path) -> None:
    backend = backend_for(tiny_model_dir, energy={"source": "none"}, baseline={"seconds": 0})
    result = Harness(backend).run(backend.config)
    assert result.flops_method == FLOPS_METHOD
    assert result.input_tokens is not None and result.output_tokens is not None
    params = result.environment["parameters_for_flops"]
    tokens = result.input_tokens + result.output_tokens
    assert result.flops_estimate == 2.0 * params * tokens
    assert result.ttft_ms_p50 is not None and result.itl_ms_p99 is not None
    assert result.queue_ms_p50 is None and result.queue_ms_p90 is None
    assert backend.gpu_indices() == [] and result.gpu_count == 0


def test_git_commit_of_the_working_dir(tmp_path: Path) -> None:
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    (tmp_path / "repo" / "sub").mkdir()
    assert git_commit(tmp_path / "repo" / "sub") == "a" * 40
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{'b' * 40} refs/heads/main\n")
    assert git_commit(tmp_path / "repo") == "b" * 40
    (git / "HEAD").write_text("c" * 40)
    assert git_commit(tmp_path / "repo") == "c" * 40
    assert git_commit(tmp_path) is None
