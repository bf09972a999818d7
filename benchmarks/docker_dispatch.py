"""Docker dispatch overhead: DockerRunner on a trivial experiment vs a bare ``docker run --rm``.

The trivial experiment: FakeBackend, one prompt, max_output_tokens=1, energy none, no
warm-up, no baseline — so almost all of its time is the container round trip plus
Python starting and importing llem_nb inside the container. The bare baseline is
``docker run --rm --network none <same image> true`` (the CLI, as a user would type
it); the same through the SDK is printed too. All are timed alternately (ABC ABC …)
so drift hits each alike; medians and the ratio are printed (goal ≤ 1.15). A profile
of what the runner's container does beyond ``true`` follows: ``python3 -c pass`` and
the entrypoint's imports, in the same image.

    .venv/bin/python benchmarks/docker_dispatch.py [--repeats 15]

Uses $DOCKER_HOST and $LLEM_BENCH_IMAGE when set; otherwise starts the project's
private engine (scripts/docker-engine.sh), builds the CPU image, and stops it after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "docker-engine.sh"
IMPORTS = "import llem_nb.runners.entrypoint, llem_nb.measure.harness, llem_nb.testing"


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


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    host, image, started = engine()
    os.environ["DOCKER_HOST"] = host
    import docker

    from llem_nb.config.experiment import ExperimentConfig
    from llem_nb.runners.docker.runner import DockerRunner
    from llem_nb.testing import use_fake_backend

    backend = use_fake_backend()
    config = ExperimentConfig(
        model="none",
        backend=backend,
        gpus=0,
        n_prompts=1,
        batch_size=1,
        max_output_tokens=1,
        warmup={"runs": 0},
        baseline={"seconds": 0},
        energy={"source": "none"},
    )
    runner = DockerRunner(image, base_url=host)
    client = docker.DockerClient(base_url=host)
    mount = {sysconfig.get_paths()["purelib"]: {"bind": "/opt/llem/site-packages", "mode": "ro"}}
    cli = ["docker", "-H", host, "run", "--rm", "--network", "none", image]

    def in_container(*command: str) -> object:
        return client.containers.run(
            image, list(command), remove=True, network_mode="none", volumes=mount
        )

    cases: dict[str, Callable[[], object]] = {
        "DockerRunner, trivial experiment": lambda: runner.run(config),
        "docker run --rm IMAGE true (CLI)": lambda: subprocess.run([*cli, "true"], check=True),
        "same via the SDK": lambda: client.containers.run(
            image, "true", remove=True, network_mode="none"
        ),
        "profile: python3 -c pass": lambda: in_container("python3", "-c", "pass"),
        "profile: entrypoint imports": lambda: in_container("python3", "-c", IMPORTS),
    }
    try:
        for fn in cases.values():
            fn()  # warm the image cache, the page cache and the runner's client
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                times[name].append(timed(fn))
    finally:
        runner.close()
        client.close()
        if started:
            subprocess.run(["bash", str(SCRIPT), "stop"], check=False)

    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"image {image}, {args.repeats} alternating runs each, medians:")
    for name, value in med.items():
        print(f"  {name:<36} {value * 1000:7.0f} ms")
    ours = med["DockerRunner, trivial experiment"]
    ratio_cli = ours / med["docker run --rm IMAGE true (CLI)"]
    ratio_sdk = ours / med["same via the SDK"]
    print(f"ratio DockerRunner / bare docker run --rm true: {ratio_cli:.2f} (CLI)")
    print(f"ratio DockerRunner / the same through the SDK:  {ratio_sdk:.2f}")
    print("goal ≤ 1.15:", "met" if ratio_cli <= 1.15 else "missed")


if __name__ == "__main__":
    main()
