"""``python -m bench`` (e.g. under ``torchrun ... -m bench run SUITE``)."""

import sys

from bench.cli import main

sys.exit(main())
