"""``python -m sockshock`` is the ``sockshock`` command."""

import sys

from sockshock._cli import main

sys.exit(main())
