"""`python -m alcance`: the same as the `alcance` command."""

import sys

from alcance.cli import main

sys.exit(main())
