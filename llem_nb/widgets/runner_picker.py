"""RunnerPicker: choose where each backend of a study runs, seeing what works on this machine.

The plain functions in ``widgets.capabilities`` do the work; the widget only shows them.
It is an ipywidgets ``VBox``: it goes into any layout as it is, and its ``value`` trait is
the plain ``{backend: runner value}`` mapping ``study.run(runner=...)`` takes, so
``picker.observe(callback, "value")`` hears every change.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from llem_nb.errors import ConfigError, LlemError
from llem_nb.runners.docker.ensure_images import ensure
from llem_nb.widgets._common import INSTALL_FIX, message
from llem_nb.widgets.capabilities import (
    IMAGE_MODE,
    MODES,
    Capability,
    capabilities_html,
    default_runners,
    image_for,
    mode_status,
    probe_capabilities,
    runner_value,
)

try:
    import ipywidgets as widgets
    import traitlets
except ImportError:
    raise LlemError("llem_nb widgets need ipywidgets", fix=INSTALL_FIX) from None

if TYPE_CHECKING:
    from llem_nb.runners.resolve import RunnerSpec
    from llem_nb.study.study import Study


class _Row:
    """One backend's controls: runner dropdown, image field, status line."""

    def __init__(self, backend: str, spec: RunnerSpec | ConfigError) -> None:
        self.backend = backend
        self.spec = spec
        mode, image = "local", ""
        if not isinstance(spec, ConfigError):
            mode = spec.mode if spec.arg is None or spec.mode != "docker" else IMAGE_MODE
            image = (spec.arg or "") if spec.mode == "docker" else ""
        self.mode = widgets.Dropdown(
            options=MODES,
            value=mode if mode in MODES else "local",
            layout=widgets.Layout(width="150px"),
        )
        self.image = widgets.Text(
            value=image,
            placeholder="image, e.g. my-llem:latest",
            layout=widgets.Layout(width="260px"),
        )
        self.status = widgets.HTML()
        self.box = widgets.HBox(
            [
                widgets.HTML(f"<b>{backend}</b>", layout=widgets.Layout(width="90px")),
                self.mode,
                self.image,
                self.status,
            ]
        )

    def raw_value(self) -> str:
        """The row's runner value as entered (checked by ``runner_value``)."""
        if self.mode.value == IMAGE_MODE:
            return f"docker:{self.image.value.strip()}"
        return str(self.mode.value)


class RunnerPicker(widgets.VBox):
    """One row per backend: a runner dropdown, an image field, and what works here.

    ``RunnerPicker(study)`` or ``RunnerPicker(["pytorch", "vllm"])``; pass
    ``capabilities=[...]`` to skip probing (tests, or a machine you describe yourself).

    Given a study, a "get missing images" button pulls or builds every image its Docker
    experiments need (``ll.images.ensure``), its progress shown under the rows.

    Traits: ``value`` (``{backend: runner value}``, as entered: a row with a problem keeps
    its text, and ``study.run`` names the problem) and ``valid`` (every row checks out;
    ``errors`` says what is wrong otherwise).
    """

    value = traitlets.Dict(read_only=True, help="{backend: runner value}")
    valid = traitlets.Bool(True, read_only=True, help="every row holds a valid runner value")

    def __init__(
        self,
        study_or_backends: Study | Iterable[str] = ("pytorch",),
        *,
        capabilities: list[Capability] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        study_runners: Mapping[str, str] | None = None
        study: Any = None
        if hasattr(study_or_backends, "points"):
            study = study_or_backends
            backends = sorted({p.config.backend for p in study.points}) or ["pytorch"]
            study_runners = study.config.runners
        else:
            backends = list(dict.fromkeys(study_or_backends))
        self.capabilities = probe_capabilities() if capabilities is None else capabilities
        specs = default_runners(backends, study_runners)
        self.rows = {b: _Row(b, specs[b]) for b in backends}
        for row in self.rows.values():
            row.mode.observe(lambda _c, r=row: self._refresh(r), names="value")
            row.image.observe(lambda _c, r=row: self._refresh(r), names="value")
            self._refresh(row)
        self.summary = widgets.HTML(capabilities_html(self.capabilities))
        self.study = study
        self.build_button = widgets.Button(
            description="get missing images",
            tooltip="pull or build every image this study's Docker experiments need",
            icon="download",
            layout=widgets.Layout(display="" if study is not None else "none"),
        )
        self.build_button.on_click(lambda _b: self.get_images())
        self.build_log = widgets.Textarea(
            disabled=True, layout=widgets.Layout(width="100%", display="none")
        )
        self.children = [
            self.summary,
            *(r.box for r in self.rows.values()),
            self.build_button,
            self.build_log,
        ]
        self.add_class("llem-runner-picker")

    def get_images(self) -> list[str]:
        """What the button does: ``ensure`` the study's images for the runners chosen here,
        each progress line appended to ``build_log``; a failure is shown there too."""
        self.build_log.layout.display = ""
        self.build_log.value = ""
        self.build_button.disabled = True
        try:
            return ensure(self.study, runner=self.checked(), on_line=self._log_line)
        except LlemError as exc:
            self._log_line(f"failed: {exc.message}" + (f" — {exc.fix}" if exc.fix else ""))
            return []
        finally:
            self.build_button.disabled = False

    def _log_line(self, line: str) -> None:
        self.build_log.value += line + "\n"

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

    def checked(self) -> dict[str, str]:
        """``value`` when every row is valid; else a ``ConfigError`` naming each bad row."""
        errors = self.errors
        if errors:
            detail = "; ".join(f"{b}: {e}" for b, e in errors.items())
            raise ConfigError(f"runner picker has invalid rows: {detail}", field="runner")
        return dict(self.value)

    def status_text(self, backend: str) -> str:
        """The row's status as plain text (what the widget shows, for tests and logs)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.rows[backend].status.value))

    def _refresh(self, row: _Row) -> None:
        row.image.layout.display = "" if row.mode.value == IMAGE_MODE else "none"
        with self.hold_trait_notifications():
            self.set_trait("value", {b: r.raw_value() for b, r in self.rows.items()})
            self.set_trait("valid", not self.errors)
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


__all__ = ["IMAGE_MODE", "Capability", "RunnerPicker", "probe_capabilities"]
