"""``python -m llem_nb.gpu_check``."""

import sys

from llem_nb.gpu_check import main

sys.exit(main())
