"""RunnerPicker: choose where each backend of a study runs, seeing what works on this machine.

The plain functions do the work (``probe_capabilities``, ``runner_value``,
``default_runners``); the widget only shows them. ``picker.value`` is the plain
``{backend: runner value}`` mapping ``study.run(runner=...)`` takes.
"""

from __future__ import annotations

import html
import importlib.util
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llem_nb.config.plugins import known_runners
from llem_nb.errors import ConfigError, LlemError
from llem_nb.runners.docker.images import default_image, parse_image
from llem_nb.runners.resolve import RunnerSpec, check_runner_value, resolve_runner
from llem_nb.widgets._common import View, ipywidgets, message

if TYPE_CHECKING:
    from llem_nb.study.study import Study

IMAGE_MODE = "docker:<image>"
MODES = ("local", "subprocess", "docker", IMAGE_MODE, "ray")
NOT_CHECKED = "not checked (llem_nb[docker] not installed)"


@dataclass(frozen=True)
class Capability:
    """One thing a runner needs: whether this machine has it (None: not checked) and why."""

    name: str
    usable: bool | None
    detail: str

    @property
    def symbol(self) -> str:
        return {True: "✓", False: "✗", None: "?"}[self.usable]


def check_image(image: str) -> str:
    """The image reference, stripped, or a ``ConfigError`` saying what is wrong with it."""
    return str(parse_image(image, field="docker:<image>"))


def runner_value(mode: str, image: str = "") -> str:
    """A picker row's runner value (``docker:<image>`` filled in), validated."""
    if mode == IMAGE_MODE:
        return check_runner_value(f"docker:{check_image(image)}", "runner")
    return check_runner_value(mode, "runner")


def _docker_capabilities() -> list[Capability]:
    """Docker daemon and NVIDIA toolkit, from the Docker probe when the SDK is installed."""
    from llem_nb.runners.docker import probe

    toolkit = "NVIDIA container toolkit"
    if importlib.util.find_spec("docker") is None:
        return [
            Capability("docker daemon", None, NOT_CHECKED),
            Capability(toolkit, None, NOT_CHECKED),
        ]
    try:
        daemon_ok, daemon_why = probe.docker_status()
        if not daemon_ok:
            return [
                Capability("docker daemon", False, daemon_why),
                Capability(toolkit, None, "not checked (no Docker daemon)"),
            ]
        nvidia_ok, nvidia_why = probe.nvidia_toolkit_status()
    except Exception as exc:  # a probe must never break the picker
        return [Capability("docker daemon", False, f"check failed: {exc}")]
    return [
        Capability("docker daemon", True, daemon_why),
        Capability(toolkit, nvidia_ok, nvidia_why),
    ]


def probe_capabilities(nvml: Any = None) -> list[Capability]:
    """What runners can use here: Docker daemon, NVIDIA toolkit, GPUs (NVML), Ray."""
    from llem_nb.energy.factory import nvml_available

    gpu_ok, gpu_why = nvml_available(nvml)
    ray = importlib.util.find_spec("ray") is not None
    return [
        *_docker_capabilities(),
        Capability("GPUs (NVML)", gpu_ok, gpu_why),
        Capability(
            "ray", ray, "installed" if ray else "not installed (pip install 'llem_nb[ray]')"
        ),
    ]


def mode_status(mode: str, capabilities: Iterable[Capability]) -> Capability:
    """Whether ``mode`` can run here, judged from ``capabilities`` and the runner registry."""
    runner = mode.partition(":")[0]
    caps = {c.name: c for c in capabilities}
    if runner not in known_runners():
        return Capability(runner, False, f"runner {runner!r} is not installed in this llem_nb")
    if runner == "docker":
        return caps.get("docker daemon", Capability("docker", None, NOT_CHECKED))
    if runner == "ray":
        return caps.get("ray", Capability("ray", None, "not checked"))
    return Capability(runner, True, "runs on this machine")


def default_runners(
    backends: Iterable[str], study_runners: Mapping[str, str] | None = None
) -> dict[str, RunnerSpec | ConfigError]:
    """Each backend's runner as resolution would pick it now, or the error resolution raised."""
    out: dict[str, RunnerSpec | ConfigError] = {}
    for backend in backends:
        try:
            out[backend] = resolve_runner(backend, study_runners=study_runners)
        except ConfigError as exc:
            out[backend] = exc
    return out


def image_for(backend: str) -> str | None:
    """The image the Docker runner would use for ``backend`` (None when it cannot tell)."""
    try:
        return default_image(backend)
    except LlemError:
        return None


def capabilities_html(capabilities: Iterable[Capability]) -> str:
    """What this machine offers runners, one line each."""
    colour = {True: "#1b6e20", False: "#b00020", None: "#8a6d00"}
    rows = "".join(
        f"<tr><td style='color:{colour[c.usable]};padding-right:6px'>{c.symbol}</td>"
        f"<td style='padding-right:10px'><b>{html.escape(c.name)}</b></td>"
        f"<td>{html.escape(c.detail)}</td></tr>"
        for c in capabilities
    )
    return f"<table style='font-size:12px;color:#444;margin-bottom:4px'>{rows}</table>"


class _Row:
    def __init__(self, backend: str, spec: RunnerSpec | ConfigError) -> None:
        w = ipywidgets()
        self.backend = backend
        self.spec = spec
        mode, image = "local", ""
        if isinstance(spec, RunnerSpec):
            mode = spec.mode if spec.arg is None or spec.mode != "docker" else IMAGE_MODE
            image = (spec.arg or "") if spec.mode == "docker" else ""
        self.mode = w.Dropdown(
            options=MODES, value=mode if mode in MODES else "local", layout=w.Layout(width="150px")
        )
        self.image = w.Text(
            value=image, placeholder="image, e.g. my-llem:latest", layout=w.Layout(width="260px")
        )
        self.status = w.HTML()
        self.box = w.HBox(
            [
                w.HTML(f"<b>{backend}</b>", layout=w.Layout(width="90px")),
                self.mode,
                self.image,
                self.status,
            ]
        )


class RunnerPicker(View):
    """One row per backend: a runner dropdown, an image field, and what works here.

    ``RunnerPicker(study)`` or ``RunnerPicker(["pytorch", "vllm"])``; pass
    ``capabilities=[...]`` to skip probing (tests, or a machine you describe yourself).
    """

    def __init__(
        self,
        study_or_backends: Study | Iterable[str] = ("pytorch",),
        *,
        capabilities: list[Capability] | None = None,
    ) -> None:
        w = ipywidgets()
        study_runners: Mapping[str, str] | None = None
        if hasattr(study_or_backends, "points"):
            study: Any = study_or_backends
            backends = sorted({p.config.backend for p in study.points}) or ["pytorch"]
            study_runners = study.config.runners
        else:
            backends = list(dict.fromkeys(study_or_backends))  # type: ignore[arg-type]
        self.capabilities = probe_capabilities() if capabilities is None else capabilities
        specs = default_runners(backends, study_runners)
        self.rows = {b: _Row(b, specs[b]) for b in backends}
        for row in self.rows.values():
            row.mode.observe(lambda _c, r=row: self._refresh(r), names="value")
            row.image.observe(lambda _c, r=row: self._refresh(r), names="value")
            self._refresh(row)
        self.summary = w.HTML(capabilities_html(self.capabilities))
        self.widget = w.VBox([self.summary, *(r.box for r in self.rows.values())])
        self.widget.add_class("llem-runner-picker")

    @property
    def errors(self) -> dict[str, str]:
        """Backend → why its row has no valid runner value."""
        out: dict[str, str] = {}
        for backend, row in self.rows.items():
            try:
                runner_value(row.mode.value, row.image.value)
            except ConfigError as exc:
                out[backend] = exc.message
        return out

    @property
    def value(self) -> dict[str, str]:
        """``{backend: runner value}``; a ``ConfigError`` when a row is invalid."""
        errors = self.errors
        if errors:
            detail = "; ".join(f"{b}: {e}" for b, e in errors.items())
            raise ConfigError(f"runner picker has invalid rows: {detail}", field="runner")
        return {b: runner_value(r.mode.value, r.image.value) for b, r in self.rows.items()}

    def status_text(self, backend: str) -> str:
        """The row's status as plain text (what the widget shows, for tests and logs)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.rows[backend].status.value))

    def _refresh(self, row: _Row) -> None:
        row.image.layout.display = "" if row.mode.value == IMAGE_MODE else "none"
        try:
            value = runner_value(row.mode.value, row.image.value)
        except ConfigError as exc:
            row.status.value = message(exc.message)
            return
        status = mode_status(value, self.capabilities)
        kind = {True: "ok", False: "error", None: "warn"}[status.usable]
        parts = [f"{status.symbol} {value}: {status.detail}"]
        if isinstance(row.spec, ConfigError):
            parts.append(f"resolution failed: {row.spec.message}")
        else:
            parts.append(f"default {row.spec.value} (chosen by: {row.spec.source})")
        if value.startswith("docker"):
            image = value.partition(":")[2] or image_for(row.backend)
            parts.append(f"image: {image or 'the backend default, resolved at run time'}")
        row.status.value = message(" · ".join(parts), kind)
