"""The quickest experiment the fake backend runs: two prompts, two tokens, no warm-up, no
energy source. Tests that only need rows to exist start from these fields."""

from __future__ import annotations

from typing import Any

FAST: dict[str, Any] = {
    "n_prompts": 2,
    "max_output_tokens": 2,
    "energy": {"source": "none"},
    "warmup": {"runs": 0},
}


def fake_fields(backend: str, **extra: Any) -> dict[str, Any]:
    """``FAST`` for ``backend`` on the model ``fake-model``; ``extra`` overrides any field."""
    return {"model": "fake-model", "backend": backend, **FAST, **extra}
