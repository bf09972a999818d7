"""The serving path end to end on the stub server: columns, steady-state energy, teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llem_nb.backends.serving.arrivals import arrival_times_s
from llem_nb.backends.serving.server import ManagedServer
from llem_nb.config.experiment import validate_experiment
from llem_nb.energy.base import DeviceReading, EnergyReading, PowerSample
from llem_nb.energy.clock import SYSTEM_CLOCK
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.errors import BackendError
from llem_nb.measure.harness import Harness
from llem_nb.measure.served_rows import steady_reading
from llem_nb.study.study import Study
from llem_nb.testing import FakeGpu, FakeNvml
from llem_nb.testing.stub_backend import use_stub_server_backend
from llem_nb.testing.stub_server import StubServer

pytest.importorskip("aiohttp")
POWER_W = 200.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_steady_reading_cuts_energy_from_the_same_power_timeline() -> None:
    samples = [PowerSample(t / 10, (POWER_W,)) for t in range(0, 101)]
    reading = EnergyReading(
        "nvml", 10.0, [DeviceReading("gpu0", 2000.0, "power")], samples=samples, t0=0, t1=10
    )
    cut = steady_reading(reading, 2.5, 7.5)
    assert cut.energy_j == pytest.approx(POWER_W * 5.0)
    assert (cut.t0, cut.t1, cut.window_s) == (2.5, 7.5, 5.0)
    assert reading.energy_j == 2000.0  # the run's reading is untouched


def test_openai_backend_on_a_running_server_fills_every_serving_column() -> None:
    nvml = FakeNvml([FakeGpu(power_w=POWER_W, counter_update_s=0.02)])
    meter = NvmlMeter([0], poll_interval_s=0.01, nvml=nvml, clock=SYSTEM_CLOCK)
    with StubServer(tokens_per_s=100.0, version="stub-9") as stub:
        config = validate_experiment(
            {
                "model": "stub",
                "backend": "openai",
                "gpus": [0],
                "baseline": {"seconds": 0.2},
                "openai": {"base_url": stub.base_url, "max_num_seqs": 3},
                "max_output_tokens": 8,
                "workload": {
                    "kind": "serving",
                    "request_rate": 25,
                    "arrival": "constant",
                    "n_requests": 16,
                    "warmup_requests": 2,
                    "slo": {"ttft_ms": 60_000, "e2e_s": 600},
                },
            }
        )
        result = Harness(meter=meter).run(config)
        assert stub.received == 18  # warm-up requests are sent, not counted
    assert result.status == "ok", result.warnings
    assert result.n_requests == 16 and result.output_tokens_run == 16 * 8
    assert result.offered_rate_rps == 25.0 and result.achieved_rate_rps > 0
    assert 0 < result.steady_state_s == result.window_s
    assert 0 < result.output_tokens < result.output_tokens_run
    # constant 200 W: the steady state's energy is 200 W × its length
    assert result.energy_gross_j / result.steady_state_s == pytest.approx(POWER_W, rel=0.05)
    assert result.energy_run_j > result.energy_gross_j
    assert result.energy_per_output_token_j_run == pytest.approx(
        result.energy_run_j / result.output_tokens_run
    )
    assert result.slo_attainment == 1.0 and result.goodput_rps > 0
    assert result.ttft_ms_p50 <= result.ttft_ms_p90 <= result.ttft_ms_p99
    assert result.latency_s_p50 <= result.latency_s_p90 <= result.latency_s_p99
    assert result.avg_running is not None and 0 <= result.avg_running <= 16
    assert result.server_external is True
    assert result.environment["engine_version"] == "stub-9"
    assert result.environment["arrivals_s"] == arrival_times_s(16, 25.0, "constant")
    saved = json.loads(result.model_dump_json())
    assert saved["offered_rate_rps"] == 25.0 and saved["slo_attainment"] == 1.0


def study(tmp_path: Path, **section: object) -> Study:
    name = use_stub_server_backend()
    return Study(
        "served",
        model="stub",
        backend=name,
        gpus=0,
        max_output_tokens=4,
        baseline={"seconds": 0},
        energy={"source": "estimate"},
        workload={"kind": "serving", "n_requests": 12, "max_concurrency": 2, "request_rate": 50},
        **{name: section},
    )


def test_stub_server_study_runs_and_loads_into_the_frame(tmp_path: Path) -> None:
    res = study(tmp_path).run(runner="local", results_dir=tmp_path / "r", progress=False)
    df = res.df
    assert list(df["status"]) == ["ok"]
    row = df.iloc[0]
    assert row["offered_rate_rps"] == 50.0 and row["output_tokens_run"] == 48
    assert row["steady_state_s"] > 0 and 0 < row["output_tokens"] < 48
    assert "steady_energy_unresolved" in row["quality_flags"]  # the estimate has no timeline
    assert row["energy_per_output_token_j_run"] > 0
    assert not bool(row["server_external"])


def test_server_dying_mid_run_is_a_failed_row_with_the_cause(tmp_path: Path) -> None:
    res = study(tmp_path, exit_after=5).run(
        runner="local", results_dir=tmp_path / "r", progress=False
    )
    row = res.df.iloc[0]
    assert row["status"] == "failed"
    assert "died mid-run" in row["error_message"]


def test_server_that_never_becomes_healthy_is_stopped_and_explained(tmp_path: Path) -> None:
    res = study(tmp_path, never_healthy=True, health_timeout_s=1.5).run(
        runner="local", results_dir=tmp_path / "r", progress=False
    )
    row = res.df.iloc[0]
    assert row["status"] == "failed"
    assert "was not healthy after 2 s" in row["error_message"]


def test_managed_server_is_stopped_with_its_whole_group() -> None:
    argv = [sys.executable, "-m", "llem_nb.testing.stub_server", "--port"]
    server = ManagedServer(lambda port: [*argv, str(port)], health_timeout_s=20)
    with server:
        guard = server.pid
        assert guard is not None and alive(guard)
    assert wait_gone(guard)
    with pytest.raises(BackendError, match="exited"):
        ManagedServer(lambda port: [sys.executable, "-c", "raise SystemExit(4)"]).start()


CLIENT = """
import sys, time
from llem_nb.backends.serving.server import ManagedServer
argv = [sys.executable, "-m", "llem_nb.testing.stub_server", "--port"]
server = ManagedServer(lambda port: [*argv, str(port)], health_timeout_s=20).start()
print(server.pid, server.port, flush=True)
time.sleep(600)
"""


def test_sigkill_of_the_client_leaves_nothing_running() -> None:
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        guard, port = map(int, client.stdout.readline().split())  # type: ignore[union-attr]
        stub = subprocess.run(
            ["pgrep", "-f", f"stub_server --port {port}"], capture_output=True, text=True
        )
        (server,) = [int(p) for p in stub.stdout.split() if int(p) != guard]
        assert alive(guard) and alive(server)
        os.kill(client.pid, signal.SIGKILL)
        client.wait(10)
        assert wait_gone(guard) and wait_gone(server)
    finally:
        if client.poll() is None:
            os.kill(client.pid, signal.SIGKILL)
            client.wait(10)


def _stubs() -> set[int]:
    found = subprocess.run(
        ["pgrep", "-f", "llem_nb.testing.stub_server --port"], capture_output=True, text=True
    )
    return {int(p) for p in found.stdout.split()}


def test_sigkill_of_the_experiment_process_is_a_failed_row_and_leaves_no_server(
    tmp_path: Path,
) -> None:
    before = _stubs()
    res = study(tmp_path, kill_client_after_load=True).run(
        runner="subprocess", results_dir=tmp_path / "r", progress=False
    )
    row = res.df.iloc[0]
    assert row["status"] == "failed" and row["error_category"] == "crashed"
    assert "SIGKILL" in row["error_message"]
    deadline = time.monotonic() + 20
    while _stubs() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _stubs() - before  # the guard stopped the server its client left behind
