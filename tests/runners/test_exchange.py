"""The exchange dir, the trusted config the entrypoint rebuilds, and ``run_entrypoint``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import RunnerError
from llem_nb.runners.exchange import (
    Exchange,
    construct,
    read_request,
    read_trusted_request,
    run_entrypoint,
)
from llem_nb.runners.local import LocalRunner


def fake_config(backend: str, **fields: object) -> ExperimentConfig:
    base: dict[str, object] = {
        "model": "none",
        "backend": backend,
        "gpus": 0,
        "n_prompts": 3,
        "batch_size": 2,
        "max_output_tokens": 4,
        "warmup": {"runs": 0},
        "baseline": {"seconds": 0},
        "energy": {"source": "none"},
    }
    return ExperimentConfig.model_validate({**base, **fields})


def test_the_trusted_config_is_the_validated_one_field_for_field() -> None:
    config = ExperimentConfig.model_validate(
        {
            "model": "m",
            "backend": "vllm",
            "gpus": [0, "GPU-abc"],
            "decoder": {"temperature": 0.7, "top_p": 0.9},
            "vllm": {"engine": {"max_num_seqs": 8, "custom_flag": 1}, "batching": "static"},
            "warmup": {"mode": "cv", "runs": 2},
            "timeout_s": 30,
        }
    )
    dumped = config.model_dump(mode="json")
    rebuilt = construct(ExperimentConfig, json.loads(json.dumps(dumped)))
    assert rebuilt.model_dump(mode="json") == dumped
    assert rebuilt.config_hash == config.config_hash
    assert rebuilt.vllm.engine.passthrough == {"custom_flag": 1}
    assert rebuilt.decoder.sampling and rebuilt.gpu_count_requested == 2


def test_the_entrypoint_reads_what_the_host_wrote(fake_backend: str) -> None:
    config = fake_config(fake_backend)
    exchange = Exchange(config, cycle=2, study="s")
    try:
        assert oct(exchange.dir.stat().st_mode & 0o777) == "0o700"
        trusted = read_trusted_request(exchange.config_path)
        checked = read_request(exchange.config_path)
        assert trusted[1:] == checked[1:] == (2, "s")
        assert trusted[0].config_hash == checked[0].config_hash == config.config_hash
    finally:
        exchange.cleanup()


def test_run_entrypoint_runs_the_exchange_as_a_container_does(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    config = fake_config(fake_backend)
    child = run_entrypoint(config, cycle=1, study="gpu-check")
    here = LocalRunner().run(config, cycle=1, study="gpu-check")
    assert child.status == here.status == "ok"
    assert (child.config_hash, child.cycle, child.study) == (here.config_hash, 1, "gpu-check")
    assert (child.input_tokens, child.output_tokens) == (here.input_tokens, here.output_tokens)
    assert child.energy_source == here.energy_source == "none"
    assert list(tmp_path.iterdir()) == []  # the exchange dir is gone after a success


def test_run_entrypoint_failure_keeps_the_dir_and_carries_the_childs_error(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(RunnerError) as info:
        run_entrypoint(fake_config(fake_backend), env={"LLEM_FAKE_FAIL": "load"})
    err = info.value
    assert err.error_type == "BackendError" and err.fix == "unset LLEM_FAKE_FAIL"
    assert err.remote_traceback and "fake backend asked to fail in load" in err.remote_traceback
    (kept,) = tmp_path.iterdir()
    assert str(kept) in err.message
    assert (kept / "output.log").read_text().strip()
    assert list(kept.glob("*_error.json"))
