"""The exchange directory between a host and an experiment process or container.

The host writes ``{config_hash}_config.json`` into a private (0700) temp dir; the
experiment side writes ``{config_hash}_result.json`` or ``{config_hash}_error.json``.
``run_entrypoint`` runs that whole exchange in a child process of any Python exactly
as a container does (the GPU check compares it with an in-process run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import plugin_env
from llem_nb.errors import RunnerError
from llem_nb.results.schema import ErrorInfo, ExperimentResult
from llem_nb.results.timeseries import restore_timeseries
from llem_nb.runners import CONFIG_ENV


class Exchange:
    """One experiment's exchange dir on the host (under ``parent``: a reused container's dir)."""

    def __init__(
        self, config: ExperimentConfig, *, cycle: int, study: str, parent: Path | None = None
    ) -> None:
        self.config = config
        self.hash = config.config_hash
        self.dir = Path(tempfile.mkdtemp(prefix=f"llem-{config.experiment_id}-", dir=parent))
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
    """Write JSON atomically (temp file + rename) so a reader never sees half a file.

    Not fsync'd: an exchange file lives for one experiment and is read on the same machine
    (through the page cache) right after; after a crash the experiment reruns anyway. The
    result store makes the durable copy.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def read_request(path: str | Path) -> tuple[ExperimentConfig, int, str]:
    payload = json.loads(Path(path).read_text())
    return ExperimentConfig.model_validate(payload["config"]), payload["cycle"], payload["study"]


def read_trusted_request(path: str | Path) -> tuple[ExperimentConfig, int, str]:
    """``read_request`` for a config the host validated (it wrote the file): rebuilt field
    by field without running the validators again."""
    payload = json.loads(Path(path).read_text())
    return construct(ExperimentConfig, payload["config"]), payload["cycle"], payload["study"]


def construct(model: Any, data: dict[str, Any]) -> Any:
    """``model.model_construct`` all the way down: nested sections become their models."""
    values: dict[str, Any] = {}
    for name, value in data.items():
        field = model.model_fields.get(name)
        kind = field.annotation if field is not None else None
        if isinstance(value, dict) and isinstance(kind, type) and hasattr(kind, "model_fields"):
            value = construct(kind, value)
        values[name] = value
    return model.model_construct(**values)


def run_entrypoint(
    config: ExperimentConfig,
    *,
    python: str | None = None,
    cycle: int = 0,
    study: str = "",
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> ExperimentResult:
    """Run ``config`` through ``python -m llem_nb.runners.entrypoint`` in a child process,
    as a container runs it: a private exchange dir, ``LLEM_CONFIG_PATH`` pointing into it,
    the result file read back (the dir deleted), or a ``RunnerError`` carrying the child's
    error file and log, the dir kept and named."""
    exchange = Exchange(config, cycle=cycle, study=study)
    child_env = {**os.environ, **plugin_env(), **(env or {}), CONFIG_ENV: str(exchange.config_path)}
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    with open(exchange.log_path, "wb") as log:
        try:
            code = subprocess.run(
                [python or sys.executable, "-m", "llem_nb.runners.entrypoint"],
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            code = 124
    result = exchange.read_result() if code == 0 else None
    if result is not None:
        exchange.cleanup()
        return result
    error = exchange.read_error()
    said = f"{error.type}: {error.message}" if error else f"exit code {code}, no error file"
    raise RunnerError(
        f"the entrypoint failed ({said}); its files are kept in {exchange.dir}",
        fix=(error.fix if error and error.fix else None) or f"read output.log in {exchange.dir}",
        error_type=error.type if error else "EntrypointExited",
        remote_traceback=(error.traceback if error else None) or exchange.log_tail(),
        category=error.category if error else "crashed",
    )
