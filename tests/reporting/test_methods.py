"""The Methods paragraph: every statement checked against the result files it came from.

The results are made by the real measurement path (simulated NVML GPU, fake backend);
the expected values are read here from the JSON files themselves, never from the code
under test. A statement the test does not know fails it, so a new sentence needs a check.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from html import unescape
from pathlib import Path
from statistics import median
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pytest

import llem_nb
from llem_nb.measure.quality import FLAGS
from llem_nb.reporting.methods import methods, read_records
from llem_nb.results.frame import load_results
from llem_nb.results.reference import REFERENCE_CREDIT
from tests.support.nb_data import measured_results

CHECKED = {
    "scope", "energy", "devices", "baseline", "window", "prompts", "cycles", "flags",
    "software", "reference",
}  # fmt: skip


def g3(value: float) -> str:
    return f"{value:.3g}"


def between(values: list[float], unit: str = "") -> str:
    lo, hi = g3(min(values)), g3(max(values))
    return (lo if lo == hi else f"{lo}–{hi}") + (f" {unit}" if unit else "")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three batch sizes × three cycles on a simulated H100, windows held to >= 0.12 s."""
    return measured_results(
        tmp_path_factory.mktemp("methods"), batch_sizes=(1, 2, 4), cycles=3,
        config={"measurement": {"min_window_s": 0.12}, "baseline": {"seconds": 0.04},
                "warmup": {"runs": 1}, "max_input_tokens": 64},
    )  # fmt: skip


def files(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.result.json"))]


def _statements(directory: Path, reference: bool = True) -> dict[str, str]:
    df = load_results(directory)
    found, missing = methods(df, read_records([directory]), reference=reference)
    assert missing == []
    return {s.key: s.text for s in found}


def test_each_statement_agrees_with_the_result_files(results: Path) -> None:
    said = _statements(results)
    raw = files(results)
    ok = [r for r in raw if r["status"] == "ok"]
    assert set(said) == CHECKED, "a new statement needs its check here"

    ids = {r["experiment_id"] for r in raw}
    sizes = sorted({r["config"]["batch_size"] for r in raw})
    assert said["scope"].startswith(f"We measured {len(ids)} configurations (")
    assert f"batch size {', '.join(map(str, sizes))}" in said["scope"]
    assert f"in {len(raw)} runs (experiment × cycle)." in said["scope"]
    assert "model fake-model" in said["scope"] and "precision bf16" in said["scope"]

    assert {r["energy_source"] for r in ok} == {"nvml"}
    assert "NVML total-energy counter" in said["energy"]
    assert "summed over those GPUs" in said["energy"]
    poll_ms = {g3(r["config"]["energy"]["poll_interval_s"] * 1000) for r in ok}
    assert f"board power polled every {poll_ms.pop()} ms" in said["energy"]
    methods_seen = {d["method"] for r in ok for d in r["energy_devices"]}
    assert methods_seen == {"counter"} and "polled power was integrated" not in said["energy"]

    gpus = [g for r in ok for g in r["environment"]["gpus"]]
    assert said["devices"] == (
        f"Experiments ran on 1 × {gpus[0]['name']} (NVIDIA driver {gpus[0]['driver_version']}, "
        f"CUDA {gpus[0]['cuda_driver_version']})."
    )
    assert {g["name"] for g in gpus} == {gpus[0]["name"]}

    seconds = {r["config"]["baseline"]["seconds"] for r in ok}
    idle = [r["idle_power_w"] for r in ok]
    assert f"Idle power was measured for {g3(seconds.pop())} s" in said["baseline"]
    assert f"(idle power {between(idle, 'W')} across runs)" in said["baseline"]
    assert "net energy = gross energy − idle power × window length" in said["baseline"]

    warmups = [r["warmup"]["runs"] for r in ok]
    rule = {r["config"]["measurement"]["min_window_s"] for r in ok}
    repeats = [r["window_repeats"] for r in ok]
    windows = [r["window_s"] for r in ok]
    assert f"model loading and {between(warmups)} warm-up run(s) fall outside it" in said["window"]
    assert f"measurement.min_window_s = {g3(rule.pop())} s" in said["window"]
    assert max(repeats) > 1, "the fixture should need repeats to reach min_window_s"
    assert f"Windows held {between(repeats)} passes over the prompt set" in said["window"]
    assert f"lasted {between(windows, 's')} (median {g3(median(windows))} s)" in said["window"]
    assert all(w >= 0.12 for w in windows)

    config = ok[0]["config"]
    assert said["prompts"].startswith(
        f"Each run generated for {config['n_prompts']} prompts from the '{config['dataset']}' "
        f"set, at most {config['max_input_tokens']} input and {config['max_output_tokens']} "
        "output tokens per request"
    )

    cycles = Counter(r["experiment_id"] for r in ok)
    assert f"({between(list(cycles.values()))} successful per configuration)" in said["cycles"]
    assert "95 % confidence interval from Student's t" in said["cycles"]

    flags = Counter(f for r in raw for f in r["quality_flags"])
    assert flags, "the fixture's short windows raise flags"
    for flag, n in flags.items():
        assert f"{flag} ({n} of {len(raw)} runs: {FLAGS[flag]})" in said["flags"]
    assert said["flags"].count(" of ") == len(flags)

    env = ok[0]["environment"]
    assert said["software"].startswith(f"Software: llem_nb {env['llem_nb_version']}, ")
    assert f"Python {env['python']}" in said["software"]
    assert f"PyTorch {env['torch_version']}" in said["software"]
    assert ("vLLM" in said["software"]) == bool(env.get("vllm_version"))

    assert said["reference"] == REFERENCE_CREDIT


def test_the_report_ends_with_the_paragraph(results: Path, tmp_path: Path) -> None:
    page = llem_nb.report(results, tmp_path / "r.html").read_text(encoding="utf-8")
    sections = re.findall(r"<section id='([^']+)'>", page)
    assert sections[-1] == "methods"
    paragraph = re.search(r"<p id='methods-paragraph'[^>]*>(.*?)</p>", page, re.S)
    assert paragraph is not None
    expected = " ".join(_statements(results).values())
    assert unescape(paragraph.group(1)) == expected
    without = llem_nb.report(results, tmp_path / "n.html", reference=False).read_text()
    assert "ML.ENERGY" not in re.search(r"<section id='methods'>.*", without, re.S).group(0)


def test_a_failed_run_is_counted_and_excluded(fake_backend: str, tmp_path: Path) -> None:
    from llem_nb.testing import FakeBackend

    study = llem_nb.Study(
        "estimates", model="fake-model", backend=fake_backend, n_prompts=2, max_output_tokens=2,
        energy={"source": "estimate"}, warmup={"runs": 0},
    ).sweep(batch_size=[1, 2])  # fmt: skip
    res = study.run(results_dir=tmp_path, progress=False)
    FakeBackend.fail_on = "generate"
    failed = study.sweep(batch_size=[4]).run(results_dir=tmp_path, progress=False)
    FakeBackend.fail_on = None
    dirs = [res.dir, failed.dir]
    said = {
        s.key: s.text for s in methods(load_results(dirs), read_records(dirs), reference=False)[0]
    }
    raw = [r for d in dirs for r in files(d)]
    n_failed = sum(r["status"] == "failed" for r in raw)
    assert n_failed == 1
    assert said["scope"].endswith(
        f"in {len(raw)} runs (experiment × cycle); 1 failed and is excluded."
    )
    watts = {r["config"]["energy"]["cpu_w_per_core"] for r in raw if r["status"] == "ok"}
    assert said["energy"] == (
        f"Where no energy counter was readable, energy is an estimate from CPU time "
        f"({g3(watts.pop())} W per fully busy core): a model, not a measurement, flagged on "
        "every such run."
    )
    assert said["devices"].startswith("Experiments ran on the CPU")
    assert said["baseline"].startswith("No idle baseline was measured")
    assert (
        said["cycles"] == "Each configuration was run once, so no confidence intervals are given."
    )
    assert "energy_estimated" in said["flags"] and "reference" not in said


def test_from_a_dataframe_alone_it_names_what_it_cannot_state(results: Path) -> None:
    df = load_results(results)
    found, missing = methods(df)
    said = {s.key: s.text for s in found}
    assert "prompts" not in said and "Python" not in said["software"]
    assert "Idle power was measured on the same devices" in said["baseline"]
    assert "min_window_s rule and repeats" in missing and "baseline duration" in missing
    assert said["devices"].startswith(f"Experiments ran on 1 × {df['gpu_name'].iloc[0]}")
