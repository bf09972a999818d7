"""The exit codes every ``llem-nb`` command uses (re-exported by ``llem_nb.cli``)."""

EXIT_OK = 0
"""Everything ran and every experiment succeeded."""
EXIT_FAILED = 1
"""Some experiments failed; their rows are kept."""
EXIT_USAGE = 2
"""The command line was wrong (argparse's own code)."""
EXIT_CONFIG = 3
"""A config or preflight error: nothing ran."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C); what finished is kept."""
EXIT_CRASH = 70
"""An internal error (a bug in llem_nb or a plugin): the traceback is printed; please report it.
Distinct from 1, so a crash is never read as "some experiments failed"."""
EXIT_TERMINATED = 143
"""Terminated by SIGTERM (a scheduler, ``docker stop``, ``kill``); what finished is kept."""
