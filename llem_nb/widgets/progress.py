"""Live progress of a study: overall bar, per-experiment table, elapsed/ETA, power sparkline.

``ProgressState`` folds ``ProgressEvent``s into counts and rows (no widgets, easy to
test); ``LiveProgress`` shows it and is itself a progress callback, so it works with
``study.run(callbacks=[...])`` and with a run handle's ``subscribe``. ``study.run()``
in a notebook shows one automatically (``notebook_progress``); elsewhere tqdm is used.
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llem_nb.energy.device import NvmlLike
from llem_nb.errors import LlemError
from llem_nb.widgets._common import View, in_notebook, ipywidgets
from llem_nb.widgets.power import power_sampler, sparkline_svg

if TYPE_CHECKING:
    from llem_nb.run.progress import ProgressEvent

MAX_ROWS = 30
_COLOURS = {
    "queued": "#777",
    "running": "#1f5fa8",
    "done": "#1b6e20",
    "failed": "#b00020",
    "interrupted": "#8a6d00",
}


@dataclass
class Row:
    """One experiment × cycle as the progress view knows it."""

    experiment_id: str
    cycle: int
    backend: str
    status: str = "queued"
    error_category: str | None = None
    started_s: float | None = None
    finished_s: float | None = None
    label: str = ""

    @property
    def duration_s(self) -> float | None:
        if self.started_s is None or self.finished_s is None:
            return None
        return self.finished_s - self.started_s


class ProgressState:
    """Counts, rows, elapsed and ETA, from the events of one study run."""

    def __init__(self, total: int = 0) -> None:
        self.total = total
        self.rows: dict[tuple[str, int], Row] = {}
        self.elapsed_s = 0.0

    def update(self, event: ProgressEvent) -> None:
        self.total = max(self.total, event.total)
        self.elapsed_s = max(self.elapsed_s, event.elapsed_s)
        key = (event.experiment_id, event.cycle)
        row = self.rows.setdefault(key, Row(event.experiment_id, event.cycle, event.backend))
        row.label = event.label or row.label
        if event.kind == "started":
            row.status, row.started_s = "running", event.elapsed_s
        elif event.kind == "finished":
            row.status = "failed" if event.status == "failed" else "done"
            row.error_category = event.error_category
            row.finished_s = event.elapsed_s
        elif event.kind in ("interrupted", "stopped", "cancelled"):
            row.status = "interrupted"
        elif event.kind == "queued":
            row.status = "queued"

    def seed(self, snapshot: Any) -> None:
        """Start from a run handle's ``progress`` snapshot (its ``states``, queued ones too)."""
        names = {"finished": "done", "failed": "failed", "running": "running"}
        self.total = max(self.total, int(getattr(snapshot, "total", 0)))
        self.elapsed_s = max(self.elapsed_s, float(getattr(snapshot, "elapsed_s", 0.0)))
        for st in getattr(snapshot, "states", ()):
            status = names.get(st.state, st.state)
            status = status if status in _COLOURS else "queued"
            row = Row(st.experiment_id, st.cycle, st.backend, status)
            row.error_category = st.error_category
            row.label = getattr(st, "label", "")
            self.rows.setdefault((st.experiment_id, st.cycle), row)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows.values())

    @property
    def finished(self) -> int:
        return self.count("done") + self.count("failed")

    @property
    def queued(self) -> int:
        """Not started yet: announced as queued, or never announced at all."""
        started = sum(r.status != "queued" for r in self.rows.values())
        return max(self.total - started, 0)

    @property
    def eta_s(self) -> float | None:
        """Remaining time at the mean duration of the finished experiments so far."""
        durations = [d for r in self.rows.values() if (d := r.duration_s) is not None]
        if not durations:
            return None
        remaining = self.total - self.finished
        return remaining * (sum(durations) / len(durations))

    def summary(self) -> str:
        eta = self.eta_s
        return (
            f"{self.finished}/{self.total} finished · {self.count('running')} running · "
            f"{self.queued} queued · {self.count('failed')} failed · "
            f"elapsed {format_duration(self.elapsed_s)} · "
            f"ETA {format_duration(eta) if eta is not None else '—'}"
        )

    def table_html(self, max_rows: int = MAX_ROWS) -> str:
        """Running and failed rows first, then the most recent; at most ``max_rows``."""
        order = {"running": 0, "failed": 1, "interrupted": 2, "done": 3, "queued": 4}
        rows = sorted(self.rows.values(), key=lambda r: (order[r.status], -(r.started_s or 0)))
        body = "".join(
            f"<tr><td title='{html.escape(r.experiment_id)}'>"
            f"{html.escape(r.label or r.experiment_id)}</td><td>{r.cycle}</td>"
            f"<td>{html.escape(r.backend)}</td>"
            f"<td style='color:{_COLOURS[r.status]}'>{r.status}</td>"
            f"<td>{html.escape(r.error_category or '')}</td>"
            f"<td>{format_duration(r.duration_s) if r.duration_s is not None else ''}</td></tr>"
            for r in rows[:max_rows]
        )
        more = len(rows) - max_rows
        tail = f"<tr><td colspan=6>… {more} more</td></tr>" if more > 0 else ""
        return (
            "<table style='border-collapse:collapse;font-size:12px'><tr><th>experiment</th>"
            "<th>cycle</th><th>backend</th><th>status</th><th>error</th><th>took</th></tr>"
            f"{body}{tail}</table>"
        )


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveProgress(View):
    """A progress callback that draws itself: bar, counts, elapsed/ETA, table, power.

    ``power=True`` samples GPU power while running when NVML works here (skipped
    otherwise); ``nvml`` injects the NVML door, or a pynvml stand-in such as
    ``llem_nb.testing.FakeNvml``.
    """

    def __init__(self, total: int = 0, *, power: bool = True, nvml: NvmlLike = None) -> None:
        w = ipywidgets()
        self.state = ProgressState(total)
        self.bar = w.IntProgress(
            value=0,
            min=0,
            max=max(total, 1),
            description="experiments",
            style={"description_width": "initial"},
            bar_style="info",
            layout=w.Layout(width="420px"),
        )
        self.label = w.HTML()
        self.table = w.HTML()
        self.power = w.HTML()
        self.stop_button = w.Button(
            description="Stop", icon="stop", disabled=True, button_style="warning"
        )
        self.stop_button.layout.display = "none"
        self.stop_button.on_click(lambda _b: self.stop())
        self._handle: Any = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None
        self._t0: float | None = None
        self._stop_requested = False
        self.sampler = power_sampler(nvml) if power else None
        if self.sampler is not None:
            self.sampler.start(on_sample=self._draw_power)
        self.widget = w.VBox(
            [w.HBox([self.bar, self.stop_button]), self.label, self.power, self.table]
        )
        self.widget.add_class("llem-progress")
        self._draw()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if self._t0 is None:
                self._t0 = time.monotonic() - event.elapsed_s
                self._start_ticker()
            self.state.update(event)
            self._draw()

    def _start_ticker(self) -> None:
        """Keep elapsed/ETA moving between events (experiments can take minutes)."""

        def tick() -> None:
            while not self._closed.wait(1.0) and self.state.finished < self.state.total:
                with self._lock:
                    self._draw_label()

        self._ticker = threading.Thread(target=tick, name="llem-progress-ticker", daemon=True)
        self._ticker.start()

    def attach(self, handle: Any) -> LiveProgress:
        """Follow a run handle (``study.start()``): subscribe to it and show Stop.

        Without a handle (``study.run()`` in the cell) the kernel's stop button stops the run.
        """
        self._handle = handle
        handle.subscribe(self)
        with self._lock:
            self.state.seed(getattr(handle, "progress", None))
            self._draw()
        self.stop_button.disabled = False
        self.stop_button.layout.display = ""
        return self

    def stop(self) -> None:
        """Ask the attached run to stop after the current experiment."""
        if self._handle is not None:
            self._handle.stop()
            self.stop_button.disabled = True
            self._stop_requested = True
            self._draw_label()

    def close(self) -> None:
        """The run ended: stop sampling power; the view keeps its final state."""
        self._closed.set()
        if self.sampler is not None:
            self.sampler.stop()
        self.stop_button.disabled = True
        failed = self.state.count("failed")
        done = self.state.finished == self.state.total
        self.bar.bar_style = "danger" if failed else ("success" if done else "warning")

    def _draw(self) -> None:
        s = self.state
        self.bar.max = max(s.total, 1)
        self.bar.value = s.finished
        self.bar.bar_style = "danger" if s.count("failed") else "info"
        self.table.value = s.table_html()
        self._draw_label()

    def _draw_label(self) -> None:
        s = self.state
        if self._t0 is not None and s.finished < s.total and not self._closed.is_set():
            s.elapsed_s = max(s.elapsed_s, time.monotonic() - self._t0)
        text = s.summary() + (" · stop requested" if self._stop_requested else "")
        self.label.value = f"<span style='font-size:12px'>{html.escape(text)}</span>"

    def _draw_power(self) -> None:
        if self.sampler is not None:
            svg = sparkline_svg(list(self.sampler.samples))
            self.power.value = f"<span style='font-size:12px'>GPU power </span>{svg}"


def notebook_progress(total: int) -> LiveProgress | None:
    """A displayed ``LiveProgress`` inside a Jupyter kernel with ipywidgets; else None."""
    if not in_notebook():
        return None
    try:
        progress = LiveProgress(total)
    except LlemError:  # no ipywidgets: the caller falls back to tqdm
        return None
    from IPython.display import display

    display(progress)
    return progress


__all__ = ["LiveProgress", "ProgressState", "notebook_progress"]
