"""`python -m bot.cli ...`, the same as `mappa ...`."""

import sys

from bot.cli import main

sys.exit(main())
