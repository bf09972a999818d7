"""What every llem_nb widget shares: the ipywidgets import, display delegation, messages."""

from __future__ import annotations

import html
from types import ModuleType
from typing import Any

from llem_nb.errors import LlemError

INSTALL_FIX = "pip install 'llem_nb[notebook]' (ipywidgets, matplotlib)"


def ipywidgets() -> ModuleType:
    """The ``ipywidgets`` module, or a ``LlemError`` that says how to install it."""
    try:
        import ipywidgets as widgets
    except ImportError:
        raise LlemError("llem_nb widgets need ipywidgets", fix=INSTALL_FIX) from None
    return widgets


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not plain IPython, not a script)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def message(text: str, kind: str = "error") -> str:
    """An inline HTML message: ``error`` (red), ``warn`` (amber) or ``ok`` (green)."""
    colour = {"error": "#b00020", "warn": "#8a6d00", "ok": "#1b6e20"}.get(kind, "#333")
    lines = html.escape(text).replace("\n", "<br>")
    return f"<div style='color:{colour};font-size:12px;white-space:normal'>{lines}</div>"


class View:
    """A plain object that displays as its ``widget``: for a view whose ``close()`` means
    something else than closing a widget (``LiveProgress``: the run ended)."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
