"""StudyBuilder: fill in models, backends, precisions and sweep values; get a ``Study``.

The form's logic is plain functions (``widgets.study_form``); the widget parses its text
fields, shows the expanded-point count and the YAML live, and shows any problem as a
message instead of raising. It is an ipywidgets ``VBox`` whose ``value`` trait is the
current ``Study`` (None while the form has a problem): ``builder.observe(cb, "value")``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llem_nb.config.plugins import known_backends
from llem_nb.errors import ConfigError, LlemError
from llem_nb.study.study import Study
from llem_nb.widgets._common import INSTALL_FIX, message
from llem_nb.widgets.study_form import PRECISIONS, build_study, parse_axes, parse_values

try:
    import ipywidgets as widgets
    import traitlets
except ImportError:
    raise LlemError("llem_nb widgets need ipywidgets", fix=INSTALL_FIX) from None


class StudyBuilder(widgets.VBox):
    """Text fields and pickers that build ``builder.study``, with the count and YAML live.

    ``base`` holds fixed fields the form does not show (e.g. ``{"max_input_tokens": 128}``).
    Traits: ``value``, the ``Study`` the form describes (None while it has a problem; the
    ``message`` says which).
    """

    value = traitlets.Instance(Study, allow_none=True, read_only=True, help="the Study")

    def __init__(
        self,
        name: str = "my-study",
        *,
        model: str | Sequence[str] = "",
        backends: Sequence[str] = ("pytorch",),
        precisions: Sequence[str] = ("bf16",),
        batch_sizes: Sequence[int] = (1, 2, 4, 8),
        max_output_tokens: Sequence[int] = (64,),
        n_prompts: int = 32,
        cycles: int = 1,
        base: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        w = widgets
        models = [model] if isinstance(model, str) else list(model)
        wide = w.Layout(width="420px")
        self.base = dict(base or {})
        self.name = w.Text(value=name, description="name")
        self.models = w.Textarea(
            value="\n".join(models),
            description="model(s)",
            placeholder="one per line: HF id or local dir",
            layout=wide,
        )
        self.backends = w.SelectMultiple(
            options=known_backends(), value=tuple(backends), description="backend(s)", rows=2
        )
        self.precisions = w.SelectMultiple(
            options=PRECISIONS, value=tuple(precisions), description="precision", rows=3
        )
        self.batch_sizes = w.Text(value=", ".join(map(str, batch_sizes)), description="batch sizes")
        self.max_output_tokens = w.Text(
            value=", ".join(map(str, max_output_tokens)), description="max out tok"
        )
        self.n_prompts = w.BoundedIntText(
            value=n_prompts, min=1, max=100_000, description="prompts"
        )
        self.cycles = w.BoundedIntText(value=cycles, min=1, max=1000, description="cycles")
        self.axes = w.Textarea(
            description="other axes",
            layout=wide,
            placeholder="decoder.temperature = 0, 0.7\npytorch.attn_implementation = sdpa, eager",
        )
        self.count = w.HTML()
        self.message = w.HTML()
        self.yaml = w.HTML()
        self.path = w.Text(value=f"{name}.yaml", description="save to")
        self.save_button = w.Button(description="Save YAML", icon="save")
        self.save_button.on_click(lambda _b: self.save())
        inputs = [
            self.name,
            self.models,
            self.backends,
            self.precisions,
            self.batch_sizes,
            self.max_output_tokens,
            self.n_prompts,
            self.cycles,
            self.axes,
        ]
        for field in inputs:
            field.observe(lambda _c: self.rebuild(), names="value")
        self._study: Study | None = None
        self._error: ConfigError | None = None
        self.children = [
            w.HBox([w.VBox(inputs[:5]), w.VBox(inputs[5:])]),
            self.count,
            self.message,
            w.HBox([self.path, self.save_button]),
            self.yaml,
        ]
        self.add_class("llem-study-builder")
        self.rebuild()

    def build(self) -> Study:
        """The study the form describes now; ``ConfigError`` when it has a problem."""
        return build_study(
            self.name.value.strip(),
            models=parse_values(self.models.value, "model(s)"),
            backends=self.backends.value,
            precisions=self.precisions.value,
            batch_sizes=parse_values(self.batch_sizes.value, "batch sizes", int),
            max_output_tokens=parse_values(self.max_output_tokens.value, "max output tokens", int),
            n_prompts=self.n_prompts.value,
            cycles=self.cycles.value,
            axes=parse_axes(self.axes.value),
            base=self.base,
        )

    def rebuild(self) -> None:
        """Re-read the form: update the count, the YAML and the message."""
        try:
            study = self.build()
        except ConfigError as exc:
            self._study, self._error = None, exc
            self.message.value = message(str(exc))
            self.count.value = ""
            self.set_trait("value", None)
            return
        self._study, self._error = study, None
        points, dropped, n = study.points, study.invalid, study.config.cycles.n
        self.count.value = (
            f"<b>{len(points)}</b> experiments × {n} cycle{'s' * (n > 1)} = "
            f"<b>{len(points) * n}</b> runs"
            + (f", {len(dropped)} invalid point(s) dropped" if dropped else "")
        )
        notes = [f"dropped {d.overrides}: {d.reason}" for d in dropped[:3]]
        if len(self.backends.value) > 1:
            notes.append("several backends: each needs isolation (Docker); see RunnerPicker")
        if not points:
            self.message.value = message(
                "the study expands to no valid experiments\n" + "\n".join(notes)
            )
        else:
            self.message.value = message("\n".join(notes), "warn") if notes else ""
        self.yaml.value = f"<pre style='font-size:11px'>{html.escape(study.to_yaml())}</pre>"
        self.set_trait("value", study)

    @property
    def study(self) -> Study:
        """The current ``Study``; raises the form's ``ConfigError`` while it has one."""
        if self._study is None:
            raise self._error or ConfigError("the study builder has no valid study")
        return self._study

    def save(self) -> Path | None:
        """Write the study's YAML to the ``save to`` path; the outcome shows as a message."""
        try:
            path = Path(self.path.value.strip() or f"{self.study.name}.yaml")
            self.study.to_yaml(path)
        except (ConfigError, OSError) as exc:
            self.message.value = message(f"not saved: {exc}")
            return None
        self.message.value = message(f"saved {path}", "ok")
        return path


__all__ = ["StudyBuilder", "build_study"]
