"""Third-party backends and runners: registered by entry point or by call, used like built-ins.

A test-only distribution (``toyplug``, a dist-info folder on ``sys.path``) declares a
backend with its own config section and a runner in the ``llem_nb.backends`` and
``llem_nb.runners`` entry-point groups; a study then sweeps the backend's own key and
runs through the runner, with no change to llem_nb.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from llem_nb.config.plugins import (
    BACKENDS,
    RUNNERS,
    plugin_env,
    register_backend,
    register_runner,
)
from llem_nb.errors import ConfigError
from llem_nb.runners.base import make_runner
from llem_nb.runners.resolve import check_runner_value
from llem_nb.study.study import Study

TOYPLUG = """
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput
from llem_nb.measure.harness import Harness
from llem_nb.runners.base import Runner


class ToySection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speed: int = 1
    flavour: str = "plain"


class ToyBackend(Backend):
    name: ClassVar[str] = "toy"
    config_section: ClassVar[Any] = ToySection

    def load(self) -> None:
        self.speed = self.config.section().speed

    def generate(self, prompts: list[str]) -> GenerationOutput:
        out = [RequestOutput(3, self.speed, 0.01, 0.001) for _ in prompts]
        return GenerationOutput(out)


class ToyRunner(Runner):
    name: ClassVar[str] = "toyrun"
    runs: ClassVar[list[str]] = []

    @classmethod
    def from_arg(cls, arg: str, *, source: str | None = None) -> "ToyRunner":
        runner = cls(source=source)
        runner.tag = arg
        return runner

    def _execute(self, config, *, cycle, study):
        type(self).runs.append(config.experiment_id)
        return Harness().run(config, cycle=cycle, study=study)
"""


@pytest.fixture
def toyplug(tmp_path: Path) -> Iterator[Path]:
    """Install the toy distribution (module + dist-info with entry points) on sys.path."""
    (tmp_path / "toyplug.py").write_text(TOYPLUG)
    info = tmp_path / "toyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [llem_nb.backends]
            toy = toyplug:ToyBackend

            [llem_nb.runners]
            toyrun = toyplug:ToyRunner
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    BACKENDS.refresh()
    RUNNERS.refresh()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("toyplug", None)
        for registry in (BACKENDS, RUNNERS):
            registry._entries = {
                k: v for k, v in registry._entries.items() if k in registry._builtins
            }
            registry.refresh()


def test_entry_point_plugins_run_a_study(toyplug: Path, tmp_path: Path) -> None:
    assert "toy" in BACKENDS.names() and "toyrun" in RUNNERS.names()
    study = (
        Study("toys", model="anything", backend="toy", n_prompts=3, batch_size=3, gpus=0,
              energy={"source": "none"}, warmup={"runs": 0})
        .sweep({"toy.speed": [2, 5]})
        .runners(toy="toyrun")
    )  # fmt: skip
    res = study.run(results_dir=tmp_path / "results", progress=False)
    assert [r.status for r in res.results] == ["ok", "ok"]
    assert sorted(r.output_tokens or 0 for r in res.results) == [6, 15]
    assert {r.runner for r in res.results} == {"toyrun"}
    assert {r.runner_source for r in res.results} == {"study"}
    df = res.df
    assert sorted(df["toy.speed"]) == [2, 5]
    import toyplug  # type: ignore[import-not-found]

    assert len(toyplug.ToyRunner.runs) == 2


def test_a_plugin_section_is_validated_by_its_own_model(toyplug: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'toy.speed'"):
        Study("t", model="m", backend="toy").sweep({"toy.sped": [1]})
    with pytest.raises(ConfigError, match="toy.speed"):
        Study("t", model="m", backend="toy", toy={"speed": "fast"})
    good = Study("t", model="m", backend="toy", toy={"flavour": "mint"})
    (config,) = good.experiments
    assert config.section().flavour == "mint" and config.section().speed == 1
    assert config.measurement_dict()["plugins"] == {"toy": {"speed": 1, "flavour": "mint"}}
    other = Study("t", model="m", backend="pytorch").experiments[0]
    assert "plugins" not in other.measurement_dict()


def test_runner_values_and_errors_come_from_the_registry(toyplug: Path) -> None:
    assert check_runner_value("toyrun", "runner") == "toyrun"
    runner = make_runner("toyrun:fast", source="argument")
    assert runner.name == "toyrun" and runner.tag == "fast"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="toyrun"):
        check_runner_value("toyrn", "runner")
    with pytest.raises(ConfigError, match="no backend named 'toi'; did you mean 'toy'"):
        Study("t", model="m", backend="toi")


def test_register_by_call_and_the_environment_carries_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from llem_nb.testing.backend import FakeBackend

    monkeypatch.delenv("LLEM_BACKENDS", raising=False)
    monkeypatch.delenv("LLEM_RUNNERS", raising=False)
    monkeypatch.setenv("LLEM_RUNNERS", "inherited=pkg.mod:Runner")
    register_backend("fake-called", FakeBackend)
    register_runner("local-again", "llem_nb.runners.local:LocalRunner")
    register_backend("here-only", FakeBackend, child_processes=False)
    import os

    assert "LLEM_BACKENDS" not in os.environ, "registering never writes os.environ"
    assert os.environ["LLEM_RUNNERS"] == "inherited=pkg.mod:Runner"
    backends, runners = (plugin_env()[k].split(",") for k in ("LLEM_BACKENDS", "LLEM_RUNNERS"))
    assert "fake-called=llem_nb.testing.backend:FakeBackend" in backends
    assert not any(b.startswith("here-only=") for b in backends)
    assert runners[:2] == [
        "inherited=pkg.mod:Runner",
        "local-again=llem_nb.runners.local:LocalRunner",
    ]
    assert make_runner("local-again").name == "local"
    for registry, name in ((BACKENDS, "fake-called"), (RUNNERS, "local-again")):
        registry.unregister(name)
    BACKENDS.unregister("here-only")
    after = plugin_env()
    assert "fake-called" not in after.get("LLEM_BACKENDS", "")
    assert after["LLEM_RUNNERS"].split(",")[0] == "inherited=pkg.mod:Runner"
    assert "local-again" not in after["LLEM_RUNNERS"]
