"""The ``sockshock`` command line (``sockshock run``); the code lives in
``sockshock._frontends`` (``_cli``: arguments, ``_run``: the run and its matrix,
``_run_checks``: the checks)."""

import sys

from sockshock._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
