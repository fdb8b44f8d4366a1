"""``python -m ssdsim.calibrate``: see ``ssdsim.calibrate.cli``."""

import sys

from ssdsim.calibrate.cli import main

sys.exit(main())
