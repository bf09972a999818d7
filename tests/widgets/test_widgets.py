"""Widgets driven headless: set values, click, check the Study, runner mapping and figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import pandas as pd
import pytest
import traitlets

from llem_nb.energy.device import Nvml
from llem_nb.errors import ConfigError, LlemError
from llem_nb.results.frame import load_results
from llem_nb.run.progress import ProgressEvent
from llem_nb.run.start import prepare_run
from llem_nb.study.study import Study
from llem_nb.testing import FakeGpu, FakeNvml, SimClock
from llem_nb.widgets import (
    Capability,
    LiveProgress,
    ProgressState,
    ResultsExplorer,
    RunnerPicker,
    StudyBuilder,
    probe_capabilities,
)
from llem_nb.widgets.capabilities import IMAGE_MODE, check_image
from llem_nb.widgets.power import PowerSampler, sparkline_svg
from llem_nb.widgets.progress import notebook_progress
from tests.support.fake import FAST
from tests.support.nb_data import measured_results

NO_DOCKER = [
    Capability("docker daemon", False, "cannot connect to /var/run/docker.sock"),
    Capability("NVIDIA container toolkit", None, "not checked"),
    Capability("GPUs (NVML)", False, "NVML library not found"),
    Capability("ray", False, "not installed"),
]


def _study(backend: str, **extra: object) -> Study:
    return Study("widgets", model="fake-model", backend=backend, **FAST, **extra).sweep(
        batch_size=[1, 2]
    )


# ---------------------------------------------------------------- runner picker


def test_picker_rows_per_backend_with_default_and_its_layer(
    fake_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = (
        _study(fake_backend).sweep(backend=[fake_backend, "pytorch"]).runners(pytorch="subprocess")
    )
    monkeypatch.setenv(f"LLEM_RUNNER_{fake_backend.upper()}", "subprocess")
    picker = RunnerPicker(study, capabilities=NO_DOCKER)
    assert list(picker.rows) == [fake_backend, "pytorch"]
    assert picker.value == {fake_backend: "subprocess", "pytorch": "subprocess"}
    assert "chosen by: env" in picker.status_text(fake_backend)
    assert "chosen by: study" in picker.status_text("pytorch")
    assert "<b>docker daemon</b></td><td>cannot connect" in picker.summary.value


def test_picker_value_is_the_plain_mapping_and_runs_a_study(
    fake_backend: str, tmp_path: Path
) -> None:
    picker = RunnerPicker([fake_backend], capabilities=NO_DOCKER)
    assert "chosen by: default" in picker.status_text(fake_backend)
    picker.rows[fake_backend].mode.value = "subprocess"
    picker.rows[fake_backend].mode.value = "local"
    assert picker.value == {fake_backend: "local"}
    res = _study(fake_backend).run(runner=picker, results_dir=tmp_path, progress=False)
    assert set(res.df["runner"]) == {"local"}
    assert set(res.df["runner_source"]) == {"argument"}


def test_picker_button_gets_images_and_says_when_none_are_needed(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_study = RunnerPicker([fake_backend], capabilities=NO_DOCKER)
    assert no_study.build_button.layout.display == "none"
    picker = RunnerPicker(_study(fake_backend), capabilities=NO_DOCKER)
    assert picker.build_button.layout.display == ""
    picker.rows[fake_backend].mode.value = "local"
    picker.build_button.click()
    assert picker.build_log.value == "no experiment of this study runs in Docker: no image needed\n"
    assert picker.build_log.layout.display == ""
    assert picker.build_button.disabled is False
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    picker.rows[fake_backend].mode.value = IMAGE_MODE
    picker.rows[fake_backend].image.value = "my-llem:1"
    assert picker.get_images() == []
    assert picker.build_log.value.startswith("failed: ")
    assert "no-daemon.sock" in picker.build_log.value


def test_picker_docker_image_field_and_invalid_characters(fake_backend: str) -> None:
    picker = RunnerPicker([fake_backend], capabilities=NO_DOCKER)
    row = picker.rows[fake_backend]
    assert row.image.layout.display == "none"
    row.mode.value = IMAGE_MODE
    assert row.image.layout.display == ""
    row.image.value = "ghcr.io/llem-nb/pytorch:0.1.0-cuda12"
    assert picker.value == {fake_backend: "docker:ghcr.io/llem-nb/pytorch:0.1.0-cuda12"}
    assert "✗" in picker.status_text(fake_backend)  # docker not usable on this machine
    row.image.value = "My Image!"
    assert "characters not allowed" in picker.status_text(fake_backend)
    assert "!" in picker.errors[fake_backend]
    assert picker.valid is False
    assert picker.value == {fake_backend: "docker:My Image!"}  # as entered
    with pytest.raises(ConfigError, match="invalid rows"):
        picker.checked()
    with pytest.raises(ConfigError, match="not a valid image reference"):
        _study(fake_backend).run(runner=picker, progress=False)
    row.image.value = ""
    assert "it is empty" in picker.status_text(fake_backend)
    row.mode.value = "local"
    assert picker.valid is True and picker.checked() == {fake_backend: "local"}


def test_picker_says_which_default_image_docker_means_here() -> None:
    from llem_nb.runners.docker.images import docker_reason

    picker = RunnerPicker(["pytorch"], capabilities=NO_DOCKER)
    picker.rows["pytorch"].mode.value = "docker"
    assert f"image: {docker_reason('pytorch')}" in picker.status_text("pytorch")


@pytest.mark.parametrize(
    "image", ["python:3.11", "localhost:5000/a/b:tag", "img@sha256:" + "a" * 64, "a__b-c.d/e"]
)
def test_check_image_accepts_docker_references(image: str) -> None:
    assert check_image(f"  {image} ") == image


@pytest.mark.parametrize("image", ["upper/Case", "a b", "img:tag:again", "-lead", "x;rm -rf"])
def test_check_image_rejects_bad_references(image: str) -> None:
    with pytest.raises(ConfigError, match="not a valid image reference"):
        check_image(image)


def test_probe_capabilities_reports_gpus_from_nvml() -> None:
    gpus = {c.name: c for c in probe_capabilities(nvml=FakeNvml([FakeGpu(), FakeGpu()]))}
    assert gpus["GPUs (NVML)"].usable is True
    assert "2 GPU(s)" in gpus["GPUs (NVML)"].detail
    none = {c.name: c for c in probe_capabilities(nvml=FakeNvml(init_error=12))}
    assert none["GPUs (NVML)"].usable is False
    assert none["docker daemon"].usable in (True, False, None)
    assert none["docker daemon"].detail


def test_picker_is_a_widget_whose_value_can_be_observed(fake_backend: str) -> None:
    picker = RunnerPicker([fake_backend, "pytorch"], capabilities=NO_DOCKER)
    heard: list[tuple[object, object]] = []
    picker.observe(lambda change: heard.append((change["old"], change["new"])), "value")
    valid: list[bool] = []
    picker.observe(lambda change: valid.append(change["new"]), "valid")
    picker.rows["pytorch"].mode.value = "subprocess"
    picker.rows[fake_backend].mode.value = IMAGE_MODE
    assert heard == [
        ({fake_backend: "local", "pytorch": "local"},
         {fake_backend: "local", "pytorch": "subprocess"}),
        ({fake_backend: "local", "pytorch": "subprocess"},
         {fake_backend: "docker:", "pytorch": "subprocess"}),
    ]  # fmt: skip
    assert valid == [False]
    picker.rows[fake_backend].image.value = "my-image:1"
    assert heard[-1][1] == {fake_backend: "docker:my-image:1", "pytorch": "subprocess"}
    assert valid == [False, True]
    assert isinstance(picker, ipywidgets.VBox) and "llem-runner-picker" in picker._dom_classes
    with pytest.raises(traitlets.TraitError):
        picker.value = {}


# ---------------------------------------------------------------- study builder


def test_builder_makes_the_study_and_shows_count_and_yaml(fake_backend: str) -> None:
    builder = StudyBuilder("sweep", model="fake-model", backends=[fake_backend], base=FAST)
    builder.batch_sizes.value = "1, 2, 4"
    builder.max_output_tokens.value = "2\n3"
    builder.cycles.value = 2
    builder.axes.value = "decoder.temperature = 0, 0.7  # greedy and sampled"
    study = builder.study
    assert len(study.points) == 3 * 2 * 2
    assert study.config.sweep["batch_size"] == [1, 2, 4]
    assert study.config.sweep["decoder.temperature"] == [0, 0.7]
    assert study.config.base["model"] == "fake-model"
    assert study.config.cycles.n == 2
    assert "<b>12</b> experiments × 2 cycles = <b>24</b> runs" in builder.count.value
    assert "batch_size" in builder.yaml.value and builder.message.value == ""


def test_builder_empty_axis_and_bad_values_are_messages(fake_backend: str) -> None:
    builder = StudyBuilder("sweep", model="fake-model", backends=[fake_backend], base=FAST)
    builder.batch_sizes.value = " , "
    assert "sweep axis &#x27;batch_size&#x27; is empty" in builder.message.value
    with pytest.raises(ConfigError, match="'batch_size' is empty"):
        _ = builder.study
    builder.batch_sizes.value = "1, two"
    assert "&#x27;two&#x27; is not a valid int" in builder.message.value
    builder.batch_sizes.value = "1"
    builder.backends.value = ()
    assert "&#x27;backend&#x27; is empty" in builder.message.value
    builder.backends.value = (fake_backend,)
    builder.axes.value = "decoder.temprature = 0.5"
    assert "did you mean" in builder.message.value
    builder.axes.value = "just words"
    assert "cannot read" in builder.message.value
    builder.axes.value = ""
    assert builder.message.value == ""
    assert len(builder.study.points) == 1


def test_builder_save_button_writes_yaml_that_loads_back(fake_backend: str, tmp_path: Path) -> None:
    builder = StudyBuilder("saved", model="fake-model", backends=[fake_backend], base=FAST)
    builder.path.value = str(tmp_path / "study.yaml")
    builder.save_button.click()
    assert "saved" in builder.message.value
    loaded = Study.from_yaml(tmp_path / "study.yaml")
    assert [p.config.config_hash for p in loaded.points] == [
        p.config.config_hash for p in builder.study.points
    ]


def test_builder_value_trait_follows_the_form(fake_backend: str) -> None:
    builder = StudyBuilder("sweep", model="fake-model", backends=[fake_backend], base=FAST)
    studies: list[Study | None] = []
    builder.observe(lambda change: studies.append(change["new"]), "value")
    builder.batch_sizes.value = "1, 2"
    builder.batch_sizes.value = "1, two"
    builder.batch_sizes.value = "4"
    assert [None if s is None else s.config.sweep.get("batch_size") for s in studies] == [
        [1, 2], None, None]  # fmt: skip
    assert studies[-1] is not None and studies[-1].config.base["batch_size"] == 4
    assert builder.value is studies[-1] is builder.study


# ---------------------------------------------------------------- composing


def test_the_three_widgets_go_into_a_layout_as_they_are(
    fake_backend: str, results_df: pd.DataFrame
) -> None:
    picker = RunnerPicker([fake_backend], capabilities=NO_DOCKER)
    builder = StudyBuilder("sweep", model="fake-model", backends=[fake_backend], base=FAST)
    explorer = ResultsExplorer(results_df)
    layout = ipywidgets.HBox([picker, ipywidgets.VBox([builder, explorer])])
    assert layout.children[0] is picker and layout.children[1].children == (builder, explorer)
    for widget in (picker, builder, explorer):
        bundle = widget._repr_mimebundle_()
        view = bundle["application/vnd.jupyter.widget-view+json"]
        assert view["model_id"] == widget.model_id
    run = ipywidgets.Button(description="Run")  # e.g. a Run button, off while a row is bad
    ipywidgets.dlink((picker, "valid"), (run, "disabled"), transform=lambda ok: not ok)
    picker.rows[fake_backend].mode.value = IMAGE_MODE
    assert run.disabled is True
    picker.rows[fake_backend].image.value = "my-image:1"
    assert run.disabled is False
    heard: list[object] = []
    explorer.observe(lambda change: heard.append(change["new"]["y"]), "value")
    explorer.y.value = "window_s"
    assert heard == ["window_s"]


# ---------------------------------------------------------------- live progress


def _event(kind: str, index: int, eid: str, elapsed: float, **kw: object) -> ProgressEvent:
    return ProgressEvent(kind=kind, index=index, total=3, experiment_id=eid, backend="fake",
                         elapsed_s=elapsed, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_progress_state_counts_table_and_eta() -> None:
    state = ProgressState(3)
    state.update(_event("started", 0, "aaa", 0.0))
    state.update(_event("finished", 0, "aaa", 10.0, status="ok"))
    state.update(_event("started", 1, "bbb", 10.0))
    state.update(_event("finished", 1, "bbb", 30.0, status="failed", error_category="oom"))
    state.update(_event("started", 2, "ccc", 30.0))
    assert (state.finished, state.count("running"), state.count("failed"), state.queued) == (
        2, 1, 1, 0)  # fmt: skip
    assert state.eta_s == pytest.approx(15.0)
    table = state.table_html()
    assert table.index("ccc") < table.index("bbb") < table.index("aaa")
    assert "oom" in table
    assert "ETA 15.0 s" in state.summary()


def test_live_progress_follows_a_real_run_and_stop_button(
    fake_backend: str, tmp_path: Path
) -> None:
    progress = LiveProgress(power=False)
    res = (
        _study(fake_backend)
        .cycles(2)
        .run(results_dir=tmp_path, progress=False, callbacks=[progress])
    )
    progress.close()
    assert progress.bar.value == progress.bar.max == 4 == len(res.results)
    assert progress.bar.bar_style == "success"
    assert "4/4 finished" in progress.label.value
    table = progress.state.table_html()
    assert table.count(">batch_size=1<") == table.count(">batch_size=2<") == 2  # labels, not ids
    assert all(f"title='{r.experiment_id}'" in table for r in res.results)

    run = prepare_run(_study(fake_backend).config, results_dir=tmp_path / "stopped", progress=False)
    view = LiveProgress(power=False).attach(run)
    assert not view.stop_button.disabled
    view.stop_button.click()
    assert run.stop_requested
    assert "stop requested" in view.label.value
    assert run.execute().results == []


def test_live_progress_attached_to_a_background_run(fake_backend: str, tmp_path: Path) -> None:
    handle = _study(fake_backend).cycles(2).start(results_dir=tmp_path)
    view = LiveProgress(power=False).attach(handle)
    res = handle.wait(timeout=60)
    view.close()
    assert len(view.state.rows) == handle.progress.total == len(res.results) == 4
    assert sorted(st.label for st in handle.progress.states) == ["batch_size=1"] * 2 + [
        "batch_size=2"
    ] * 2
    assert {r.status for r in view.state.rows.values()} == {"done"}
    assert view.bar.value == 4 and view.bar.bar_style == "success"


def test_live_progress_power_sparkline_from_nvml() -> None:
    view = LiveProgress(2, nvml=FakeNvml([FakeGpu(power_w=250.0), FakeGpu(power_w=50.0)]))
    assert view.sampler is not None
    view.sampler.sample()
    view.sampler.sample()
    view._draw_power()
    view.close()
    assert "<svg" in view.power.value and "300 W" in view.power.value
    no_gpu = LiveProgress(2, nvml=FakeNvml(init_error=12))
    assert no_gpu.sampler is None and no_gpu.power.value == ""
    assert sparkline_svg([1.0]) == ""


def test_notebook_progress_is_only_for_kernels() -> None:
    assert notebook_progress(3) is None


# ---------------------------------------------------------------- results explorer


@pytest.fixture(scope="module")
def results_df(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return load_results(measured_results(tmp_path_factory.mktemp("explore")))


def test_explorer_dropdowns_redraw_the_figure(results_df: pd.DataFrame) -> None:
    explorer = ResultsExplorer(results_df)
    assert explorer.y.value == "energy_per_output_token_j"
    assert explorer.figure is not None
    explorer.y.value = "throughput_output_tok_s"
    explorer.hue.value = "cycle"
    explorer.facet.value = "batch_size"
    visible = [ax for ax in explorer.figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [f"batch_size = {b}" for b in (1, 2, 4)]
    assert visible[0].get_ylabel() == "output throughput [tok/s]"
    assert "model" in explorer.x.options and "model" not in explorer.y.options


def test_explorer_value_and_figure_traits(results_df: pd.DataFrame) -> None:
    explorer = ResultsExplorer(results_df)
    figures: list[object] = []
    explorer.observe(lambda change: figures.append(change["new"]), "figure")
    assert explorer.value == {"x": "batch_size", "y": "energy_per_output_token_j",
                              "hue": "model", "facet": None, "quality_only": False}  # fmt: skip
    explorer.hue.value = "cycle"
    assert explorer.value["hue"] == "cycle"
    assert figures[-1] is explorer.figure is not None
    assert sorted(explorer.figure.axes[0].get_legend_handles_labels()[1]) == ["0", "1"]
    explorer.quality_only.value = True
    assert figures[-1] is None and explorer.value["quality_only"] is True


def test_explorer_quality_filter_explains_an_empty_selection(results_df: pd.DataFrame) -> None:
    explorer = ResultsExplorer(results_df)
    explorer.quality_only.value = True
    assert explorer.figure is None
    assert "no row passes quality_ok" in explorer.message.value
    assert "short_window" in explorer.message.value
    passing = results_df.assign(quality_ok=True)
    assert ResultsExplorer(passing, quality_only=True).figure is not None


def test_explorer_accepts_a_results_dir_and_rejects_other_things(tmp_path: Path) -> None:
    explorer = ResultsExplorer(measured_results(tmp_path, batch_sizes=(1,), cycles=1))
    assert len(explorer.df) == 1
    with pytest.raises(LlemError, match="cannot explore"):
        ResultsExplorer(42)


NO_IPYWIDGETS = """
import sys
sys.modules["ipywidgets"] = None  # as if it were not installed
import llem_nb as ll
from llem_nb.widgets import probe_capabilities
from llem_nb.widgets.progress import ProgressState, notebook_progress

assert notebook_progress(3) is None and ProgressState(3).total == 3
assert probe_capabilities()
for name in ("RunnerPicker", "StudyBuilder", "ResultsExplorer"):
    try:
        getattr(ll, name)
    except ll.LlemError as exc:
        print(name, "|", exc.message, "|", exc.fix)
"""


def test_without_ipywidgets_the_widgets_say_how_to_install_it() -> None:
    import subprocess
    import sys

    ran = subprocess.run(
        [sys.executable, "-c", NO_IPYWIDGETS], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert [line.split(" | ")[0] for line in lines] == [
        "RunnerPicker", "StudyBuilder", "ResultsExplorer"]  # fmt: skip
    assert all("need ipywidgets" in line and "llem_nb[notebook]" in line for line in lines)


def test_power_sampler_runs_on_the_energy_poller_in_virtual_time() -> None:
    clock = SimClock()
    nvml = Nvml(FakeNvml([FakeGpu(power_w=250.0), FakeGpu(power_w=50.0)], clock=clock))
    sampler = PowerSampler(nvml, interval_s=0.5, clock=clock)
    drawn: list[int] = []
    sampler.start(on_sample=lambda: drawn.append(len(sampler.samples)))
    clock.sleep(5.0)
    sampler.stop()
    assert 10 <= len(sampler.samples) <= 12 and drawn[-1] == len(sampler.samples)
    assert set(sampler.samples) == {300.0}
    assert clock.steps("llem-nvml-poll") and nvml.module.calls["nvmlShutdown"] == 1
