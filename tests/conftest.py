"""Shared fixtures: offline mode, the tiny model, the fake backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llem_nb.testing import tiny_model

    return tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def fake_backend() -> str:
    from llem_nb.testing import FakeBackend, use_fake_backend

    FakeBackend.step_s = 0.0
    FakeBackend.fail_on = None
    return use_fake_backend()


@pytest.fixture(autouse=True)
def _no_user_runner_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's own llem_nb config and env out of the tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for key in list(os.environ):
        if key.startswith("LLEM_RUNNER_"):
            monkeypatch.delenv(key)
