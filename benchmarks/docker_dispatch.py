"""Docker dispatch overhead: DockerRunner on a trivial experiment vs bare ``docker run --rm``.

The trivial experiment: FakeBackend, one prompt, max_output_tokens=1, energy none, no
warm-up, no baseline — so almost all of its time is the container round trip plus
Python starting llem_nb's entrypoint inside the container. DockerRunner is timed as a
study runs it: the loop asks it to ``prepare`` the next experiment (create its container)
while the current one runs, so each experiment's critical path is start → exit → result.
The baselines, typed as a user would (the CLI, same image, ``--network none``):
``docker run --rm IMG true`` and ``docker run --rm IMG python3 -c pass``. Everything is
timed alternately (ABCD ABCD …) so drift hits each alike; medians, both ratios side by
side, and whether the goal (≤ 1.3× the ``python3 -c pass`` run) was met. A profile of
the container side follows: the entrypoint's imports, and the runner without ``prepare``.

    .venv/bin/python benchmarks/docker_dispatch.py [--repeats 15]

Uses $DOCKER_HOST and $LLEM_BENCH_IMAGE when set; otherwise starts the project's
private engine (scripts/docker-engine.sh), builds the CPU image, and stops it after.
``--smoke`` (for ``make test``): one repeat, only on an engine and image given by those two
variables (the integration test passes its private engine's); without them, or when the
engine does not answer, it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.runners.docker.runner import DockerRunner
from llem_nb.testing import use_fake_backend

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "docker-engine.sh"
IMPORTS = "import llem_nb.measure.harness, llem_nb.results.timeseries, llem_nb.runners.exchange"
GOAL = 1.3


def engine() -> tuple[str, str, bool]:
    """(DOCKER_HOST, image, whether this script started the daemon)."""
    host, image = os.environ.get("DOCKER_HOST"), os.environ.get("LLEM_BENCH_IMAGE")
    if host and image:
        return host, image, False
    env = {**os.environ, "PYTHON": sys.executable}
    host = subprocess.run(["bash", str(SCRIPT), "host"], capture_output=True, text=True).stdout
    was_up = subprocess.run(["docker", "-H", host.strip(), "version"], capture_output=True)
    subprocess.run(["bash", str(SCRIPT), "start"], check=True, env=env, stdout=subprocess.DEVNULL)
    built = subprocess.run(
        ["bash", str(SCRIPT), "build"], check=True, env=env, capture_output=True, text=True
    )
    return host.strip(), built.stdout.strip().splitlines()[-1], was_up.returncode != 0


def smoke_skip_reason() -> str | None:
    """Why a smoke run cannot run here (None: it can): no engine given, or it is silent."""
    host, image = os.environ.get("DOCKER_HOST"), os.environ.get("LLEM_BENCH_IMAGE")
    if not host or not image:
        return "DOCKER_HOST and LLEM_BENCH_IMAGE are not both set (no engine given)"
    try:
        found = subprocess.run(
            ["docker", "-H", host, "image", "inspect", image],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the docker CLI could not reach {host}: {exc}"
    if found.returncode != 0:
        return f"engine {host} has no image {image}: {found.stderr.strip()[:200]}"
    return None


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="one repeat on a given engine")
    args = parser.parse_args()
    if args.smoke:
        reason = smoke_skip_reason()
        if reason is not None:
            print(f"skipped: {reason}")
            return
        args.repeats = 1

    host, image, started = engine()
    os.environ["DOCKER_HOST"] = host

    backend = use_fake_backend()

    def config(seed: int) -> ExperimentConfig:
        return ExperimentConfig(
            model="none", backend=backend, gpus=0, n_prompts=1, batch_size=1,
            max_output_tokens=1, warmup={"runs": 0}, baseline={"seconds": 0},
            energy={"source": "none"}, decoder={"seed": seed},
        )  # fmt: skip

    configs = [config(i) for i in range(4 * (args.repeats + 2))]
    runner = DockerRunner(image, base_url=host)
    cold = DockerRunner(image, base_url=host)
    cli = ["docker", "-H", host, "run", "--rm", "--network", "none", image]
    queue = iter(configs)
    current = [next(queue)]

    def as_in_a_study() -> object:
        """One experiment as the study loop runs it: prepare the next, run this one."""
        this, after = current[0], next(queue)
        runner.prepare(after, cycle=0, study="bench")
        result = runner.run(this, cycle=0, study="bench")
        current[0] = after
        assert result.status == "ok", result.error
        return result

    cases: dict[str, Callable[[], object]] = {
        "DockerRunner, trivial experiment": as_in_a_study,
        "docker run --rm IMG true": lambda: subprocess.run([*cli, "true"], check=True),
        "docker run --rm IMG python3 -c pass": lambda: subprocess.run(
            [*cli, "python3", "-c", "pass"], check=True
        ),
        "profile: entrypoint imports (CLI run)": lambda: subprocess.run(
            [*cli, "python3", "-c", IMPORTS], check=True
        ),
        "profile: DockerRunner without prepare": lambda: cold.run(configs[0]),
    }
    try:
        for fn in cases.values():
            fn()  # warm the image cache, the page cache and the clients
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                times[name].append(timed(fn))
    finally:
        runner.close()
        cold.close()
        if started:
            subprocess.run(["bash", str(SCRIPT), "stop"], check=False)

    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"image {image}, {args.repeats} alternating runs each, medians:")
    for name, value in med.items():
        print(f"  {name:<40} {value * 1000:7.0f} ms")
    ours = med["DockerRunner, trivial experiment"]
    vs_true = ours / med["docker run --rm IMG true"]
    vs_python = ours / med["docker run --rm IMG python3 -c pass"]
    print(f"ratio DockerRunner / docker run --rm IMG true            : {vs_true:.2f}")
    print(f"ratio DockerRunner / docker run --rm IMG python3 -c pass : {vs_python:.2f}")
    print(f"goal ≤ {GOAL} vs python3 -c pass:", "met" if vs_python <= GOAL else "missed")


if __name__ == "__main__":
    main()
