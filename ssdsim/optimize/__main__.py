"""``python -m ssdsim.optimize``: see ``ssdsim.optimize.cli``."""

from ssdsim.optimize.cli import main

raise SystemExit(main())
