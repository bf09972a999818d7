"""Layer 5, runners: where one experiment runs.

Owns ``Runner`` (the base class that plugins subclass, with its hooks), runner
resolution (argument > env > study > user config > auto-detect > backend default), the
in-kernel and subprocess runners, the exchange directory and the container entrypoint,
Ray and ``docker/``. Every runner ends in the ``Harness``. Imports measure and below.
"""

CONFIG_ENV = "LLEM_CONFIG_PATH"
"""The variable that points an experiment process (``runners.entrypoint``) at its config."""
