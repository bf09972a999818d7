"""``python -m llem_nb.runners.entrypoint``: run one experiment from an exchange dir.

Used by the subprocess runner, inside containers and on cluster workers. It calls
the library (the Harness), never the CLI: reads ``$LLEM_CONFIG_PATH``, writes
``{hash}_result.json`` or ``{hash}_error.json`` beside it, exits 0 or 1.

Every experiment pays this module's start-up, so it stays lean: the host already
validated the config, so it is rebuilt here without validating it again; the garbage
collector is off while modules load, and what they allocated is frozen out of the
Harness's own collection before the measurement.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from llem_nb.runners import CONFIG_ENV


def main() -> int:
    config_path = Path(os.environ.get(CONFIG_ENV, ""))
    if not config_path.is_file():
        print(f"llem_nb entrypoint: {CONFIG_ENV}={config_path} is not a file", file=sys.stderr)
        return 2
    config_hash = config_path.name.removesuffix("_config.json")
    error_path = config_path.with_name(f"{config_hash}_error.json")
    gc.disable()  # before the first llem_nb import: module loading makes no garbage to find
    try:
        from llem_nb.measure.harness import Harness  # noqa: PLC0415 - a failure to import is caught and reported here
        from llem_nb.results.timeseries import save_timeseries  # noqa: PLC0415 - a failure to import is caught and reported here
        from llem_nb.runners.exchange import read_trusted_request, write_json  # noqa: PLC0415 - a failure to import is caught and reported here

        config, cycle, study = read_trusted_request(config_path)
        gc.freeze()
        gc.enable()
        result = Harness().run(config, cycle=cycle, study=study)
        result_path = config_path.with_name(f"{config_hash}_result.json")
        save_timeseries(result, result_path)
        write_json(result_path, result.model_dump(mode="json"))
    except BaseException as exc:
        gc.enable()
        from llem_nb.results.schema import ErrorInfo  # noqa: PLC0415 - needed only on the error path
        from llem_nb.runners.exchange import write_json  # noqa: PLC0415 - needed only on the error path

        write_json(error_path, ErrorInfo.from_exception(exc).model_dump(mode="json"))
        print(f"llem_nb entrypoint: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
