"""``python -m llem_nb.cli``: the same as the ``llem-nb`` command."""

import sys

from llem_nb.cli import main

sys.exit(main())
