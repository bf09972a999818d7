"""The paths a study names, checked before anything runs.

A dataset file that is not there would otherwise become a failed row an hour into a
sweep, and a results dir that is a file, or that the OS refuses (a name too long,
``/proc``), a bare ``OSError``. (The study file and its ``base:`` file are checked when
read: ``config.studyfile``.)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from llem_nb.backends.datasets import BUILTIN_DATASETS, check_dataset
from llem_nb.config.study import Point
from llem_nb.errors import ConfigError


def check_datasets(points: Iterable[Point]) -> None:
    """Every dataset is a built-in name or an existing ``.jsonl`` file (relative paths from
    the working directory, where the runners look for them too), every line of it reads,
    and it holds the most prompts any point asks of it."""
    most: dict[str, int] = {}
    for point in points:
        dataset = point.config.dataset
        known_already = dataset in most
        most[dataset] = max(most.get(dataset, 0), point.config.n_prompts)
        if known_already or dataset in BUILTIN_DATASETS:
            continue
        path = Path(dataset).expanduser()
        known = ", ".join(sorted(BUILTIN_DATASETS))
        if path.is_file() and path.suffix.lower() == ".jsonl":
            continue
        if path.is_file():
            why = "is not a .jsonl file"
        elif path.exists():
            why = "is not a file"
        elif dataset.endswith(".jsonl") or os.sep in dataset or "/" in dataset:
            why = f"does not exist (looked for {path.resolve()})"
        else:
            why = f"is neither a built-in dataset ({known}) nor a file here"
        raise ConfigError(
            f"dataset {dataset!r} (experiment {point.config.experiment_id}) {why}",
            field="dataset",
            fix=f"give a .jsonl file that exists (one prompt per line) or a built-in: {known}",
        )
    for dataset, n_prompts in most.items():
        check_dataset(dataset, n_prompts)


def check_results_dir(results_dir: str | Path) -> None:
    """The results dir is a directory, or can be made as one: every name short enough,
    its parents directories, and a directory can really be created there (a probe made and
    removed at once: ``/proc``, a read-only mount or a full quota say no only when asked)."""
    path = Path(results_dir).expanduser()
    try:
        _check_results_dir(path)
    except OSError as exc:
        raise ConfigError(
            f"results_dir {str(path)!r} is refused by the operating system: "
            f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else ""),
            field="results_dir",
            fix="give a directory on a writable disk, with a shorter path",
        ) from None


def _check_results_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"results_dir {str(path)!r} is a file, not a directory",
            field="results_dir",
            fix="give a directory (it is created when missing)",
        )
    parent = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise ConfigError(
            f"results_dir {str(path)!r} cannot be created: {str(parent)!r} is a file",
            field="results_dir",
            fix="give a directory whose parents are directories",
        )
    name_max = os.pathconf(parent, "PC_NAME_MAX")
    for part in path.relative_to(parent).parts if parent != Path(".") else path.parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(
                f"results_dir {str(path)!r}: the name {part[:40]!r}… is "
                f"{len(os.fsencode(part))} bytes, longer than this file system allows ({name_max})",
                field="results_dir",
                fix=f"give a directory whose every name is at most {name_max} bytes",
            )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"results_dir {str(path)!r}: no permission to write in {str(parent)!r}",
            field="results_dir",
            fix="give a directory you may write to",
        )
    os.rmdir(tempfile.mkdtemp(prefix=".llem-probe-", dir=parent))
