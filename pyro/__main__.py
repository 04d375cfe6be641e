"""``python -m pyro demo|serve|ns``: the command line lives in :mod:`pyro.cli`."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
