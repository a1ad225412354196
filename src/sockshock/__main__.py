"""``python -m sockshock`` is the ``sockshock`` command."""

import sys

from sockshock.cli import main

sys.exit(main())
