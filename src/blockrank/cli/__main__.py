"""``python -m blockrank.cli``."""

import sys

from blockrank.cli import main

sys.exit(main())
