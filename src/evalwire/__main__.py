"""``python -m evalwire`` runs the command line."""

import sys

from evalwire.cli import main

sys.exit(main())
