"""``python -m ssdsim.validate``: see ``ssdsim.validate.cli``."""

import sys

from ssdsim.validate.cli import main

sys.exit(main())
