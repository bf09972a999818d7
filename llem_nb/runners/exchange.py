"""The exchange directory between a host and an experiment process or container.

The host writes ``{config_hash}_config.json`` into a private (0700) temp dir; the
experiment side writes ``{config_hash}_result.json`` or ``{config_hash}_error.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.results.schema import ErrorInfo, ExperimentResult
from llem_nb.results.timeseries import restore_timeseries

CONFIG_ENV = "LLEM_CONFIG_PATH"


class Exchange:
    """One experiment's exchange dir on the host."""

    def __init__(self, config: ExperimentConfig, *, cycle: int, study: str) -> None:
        self.config = config
        self.hash = config.config_hash
        self.dir = Path(tempfile.mkdtemp(prefix=f"llem-{config.experiment_id}-"))
        os.chmod(self.dir, 0o700)
        payload = {"config": config.model_dump(mode="json"), "cycle": cycle, "study": study}
        write_json(self.config_path, payload)

    @property
    def config_path(self) -> Path:
        return self.dir / f"{self.hash}_config.json"

    @property
    def result_path(self) -> Path:
        return self.dir / f"{self.hash}_result.json"

    @property
    def error_path(self) -> Path:
        return self.dir / f"{self.hash}_error.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "output.log"

    def read_result(self) -> ExperimentResult | None:
        if not self.result_path.exists():
            return None
        result = ExperimentResult.model_validate_json(self.result_path.read_text())
        restore_timeseries(result, self.result_path)
        return result

    def read_error(self) -> ErrorInfo | None:
        if not self.error_path.exists():
            return None
        try:
            return ErrorInfo.model_validate_json(self.error_path.read_text())
        except ValueError:
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename) so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_request(path: str | Path) -> tuple[ExperimentConfig, int, str]:
    payload = json.loads(Path(path).read_text())
    return ExperimentConfig.model_validate(payload["config"]), payload["cycle"], payload["study"]
