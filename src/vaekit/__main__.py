"""``python -m vaekit`` runs the command line (also what torchrun launches)."""

import sys

from vaekit.cli import main

sys.exit(main())
