"""A study dir's definition: its ``study.yaml``, and the copy each run records in the journal.

A resume compares the study it is given with the definition the dir's last run recorded
(its journal's ``session`` line), so a ``study.yaml`` edited by hand is a changed definition
as much as a different ``Study`` passed from Python. Dirs from before that record fall back
to their ``study.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llem_nb.config.keys import flatten
from llem_nb.config.study import StudyConfig
from llem_nb.errors import ConfigError
from llem_nb.run.journal import JournalState

STUDY_FILE = "study.yaml"


def read_definition(study_dir: Path) -> StudyConfig:
    path = study_dir / STUDY_FILE
    if not path.is_file():
        raise ConfigError(
            f"{study_dir} is not a study directory: it has no {STUDY_FILE}",
            field="resume",
            fix="pass the directory a study run created (StudyResult.dir)",
        )
    return StudyConfig.from_yaml(path)


def definition_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ, as ``key: old → new`` lines."""
    a, b = flatten(old), flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            lines.append(f"{key}: {a.get(key, '<unset>')!r} → {b.get(key, '<unset>')!r}")
    return lines


SAME_DEFINITION = frozenset({"reuse"})
"""Fields a resume may change freely: how a run loads models, not what it measures."""


def recorded_definition(state: JournalState) -> dict[str, Any] | None:
    """The definition the latest run in the dir recorded (None: a dir from before records)."""
    for session in reversed(state.sessions):
        if session.get("phase") == "open" and isinstance(session.get("definition"), dict):
            return dict(session["definition"])
    return None


def check_definition(
    study_dir: Path,
    config: StudyConfig,
    *,
    force: bool,
    recorded: Mapping[str, Any] | None = None,
) -> list[str]:
    """Raise ConfigError naming what changed since ``study_dir``'s last run, unless ``force``.

    ``recorded``: the definition that run journaled; without it, the dir's ``study.yaml``.
    """
    current = read_definition(study_dir)
    if recorded is None:
        recorded = current.model_dump(mode="json")
    old = {k: v for k, v in recorded.items() if k not in SAME_DEFINITION}
    changes = definition_changes(old, config.model_dump(mode="json", exclude=set(SAME_DEFINITION)))
    if changes and not force:
        raise ConfigError(
            f"study {config.name!r} changed since {study_dir} was last run: " + "; ".join(changes),
            field="resume",
            fix=f"undo the edits to {STUDY_FILE} or resume with the original definition, "
            "start a new run (resume=False), or resume under the new definition with "
            "force=True (llem-nb resume --force)",
        )
    return changes
