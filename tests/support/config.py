"""The one way tests change ``Pyro4.config`` (it is global): for a test, or for a block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import Pyro4

__all__ = ["config_changed", "patch_config"]


@contextlib.contextmanager
def config_changed(**changes: Any) -> Iterator[None]:
    """Change ``Pyro4.config`` settings inside a ``with`` block; restore them on the way out."""
    saved = {name: getattr(Pyro4.config, name) for name in changes}
    try:
        for name, value in changes.items():
            setattr(Pyro4.config, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(Pyro4.config, name, value)


def patch_config(testcase: Any, **changes: Any) -> None:
    """Change ``Pyro4.config`` for one test; an ``addCleanup`` puts the old values back."""
    for name, value in changes.items():
        testcase.addCleanup(setattr, Pyro4.config, name, getattr(Pyro4.config, name))
        setattr(Pyro4.config, name, value)
