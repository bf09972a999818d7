"""The GPU check's readiness table (issue 24) in ``--fake`` mode: every check runs on the CPU
against the NVML simulator, a fake ``torch.cuda`` and the fake vLLM, and says ok."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llem_nb.cli import readiness as cli_readiness
from llem_nb.gpu_check import readiness
from llem_nb.gpu_check.ready_checks import Failed, Host

ROOT = Path(__file__).resolve().parents[1]
ITEMS = [str(i) for i in range(1, 12)]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


def test_fake_readiness_runs_every_item_and_each_is_ok(tmp_path: Path) -> None:
    rows = readiness.readiness(fake=True, model_dir=tmp_path)
    by_item = {r.item: r for r in rows}
    assert [r.item for r in rows] == [*ITEMS, "bf16", "MIG", "docker"]
    for item in ITEMS:
        row = by_item[item]
        assert row.status == "ok" or row.status.startswith("skipped: needs root"), row
    assert "cu128" in by_item["1"].detail and "cuda12" in by_item["1"].detail
    assert "1 of 4 GPUs" in by_item["4"].detail
    assert "4 GPU(s) matched by UUID" in by_item["9"].detail
    settled = by_item["11"].detail
    assert settled.endswith(" W") and 55 <= float(settled.split()[-2]) <= 65
    assert by_item["docker"].status == "skipped: --fake"
    assert by_item["MIG"].status == "skipped: MIG is off on GPU 0"


def test_a_failing_check_is_a_fail_row_and_the_rest_still_run(tmp_path: Path) -> None:
    def broken(host: Host) -> str:
        raise Failed("found the problem")

    def crashing(host: Host) -> str:
        raise RuntimeError("boom")

    host = readiness.fake_host(tmp_path)
    rows = [
        readiness.run_check("x", "broken", broken, host),
        readiness.run_check("y", "crashing", crashing, host),
    ]
    assert [(r.status, r.detail) for r in rows] == [
        ("FAIL", "found the problem"),
        ("FAIL", "RuntimeError: boom"),
    ]
    assert "FAIL" in readiness.table(rows).splitlines()[1]


def test_the_script_runs_the_fake_readiness_end_to_end(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
    }
    env |= {"PYTHON": sys.executable, "OUT": str(tmp_path), "LLEM_GPU_DEPS": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--fake", "--readiness-only"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "== readiness (issue 24)"
    column = lines[1].index("status")
    statuses = {line.split()[0]: line[column:].split()[0] for line in lines[2:] if line.strip()}
    assert all(statuses[item] in ("ok", "skipped:") for item in ITEMS), done.stdout
    assert sum(s == "ok" for s in statuses.values()) >= 10


def test_without_a_gpu_readiness_exits_2_unless_fake(capsys: pytest.CaptureFixture[str]) -> None:
    from llem_nb.energy.factory import nvml_available

    if nvml_available()[0]:
        pytest.skip("this host has a GPU")
    assert cli_readiness.main([]) == 2
    assert "readiness needs an NVIDIA GPU" in capsys.readouterr().err
