"""Kept for code written against twisted-pyro 0.1: ``@pyro.dispatch.in_reactor``.

The dispatcher itself is :mod:`pyro.server.dispatch`; the marker is also
``pyro.protocol.in_reactor``.
"""

from .server.placement import in_reactor

__all__ = ["in_reactor"]
