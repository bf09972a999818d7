"""The CI workflow that publishes images builds every variant with the tests' build command."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_images_workflow_builds_and_pushes_every_variant_on_a_version_tag() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "images.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    job = workflow["jobs"]["build"]
    assert job["strategy"]["matrix"] == {"backend": ["pytorch", "vllm"], "flavour": ["cuda", "cpu"]}
    runs = [step.get("run", "") for step in job["steps"]]
    build = next(r for r in runs if "images build" in r)
    assert "llem-nb images build ${{ matrix.backend }} --${{ matrix.flavour }}" in build
    assert any(r.startswith('docker push "${{ steps.build.outputs.tag }}"') for r in runs)
    engine = (ROOT / "scripts" / "docker-engine.sh").read_text()
    assert '-m llem_nb.cli images build "$backend" --cpu' in engine
    assert "llem-nb images build $$backend" in (ROOT / "mk" / "docker.mk").read_text()
