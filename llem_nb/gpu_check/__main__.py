"""``python -m llem_nb.gpu_check``: the same as ``llem-nb gpu-check``."""

import sys

from llem_nb.cli.gpu_check import main

sys.exit(main())
