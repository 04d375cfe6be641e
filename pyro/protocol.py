"""Serve Pyro4 objects from a Twisted reactor to unmodified Pyro4 clients.

The public face of :mod:`pyro.server` (the names the original twisted-pyro gave them)::

    import pyro.protocol

    factory = pyro.protocol.Pyro4ProtocolFactory()
    port = pyro.protocol.reactor.listenTCP(0, factory, interface="127.0.0.1",
                                           backlog=pyro.protocol.DEFAULT_BACKLOG)
    factory.setAddress("127.0.0.1", port.getHost().port)
    uri = factory.register(Foo())          # PYRO:obj_...@127.0.0.1:<port>

:class:`Pyro4ProtocolFactory` is the daemon (:mod:`pyro.server.factory`); every connection is
a :class:`Pyro4Protocol` (:mod:`pyro.server.protocol`), a state machine in Pyro4's own
vocabulary (:class:`ConnectionState`). Servant methods may return ``Deferred``-s or be
coroutines; blocking servants can run in a thread pool (``threadpool=``), except those marked
:func:`in_reactor`.
"""

from __future__ import annotations

from typing import Any

from .server.factory import (
    DEFAULT_BACKLOG,
    Pyro4ClientFactory,
    Pyro4ProtocolFactory,
    Pyro4ServerFactory,
)
from .server.placement import in_reactor
from .server.protocol import MAX_QUEUED_REQUESTS, ConnectionState, Pyro4Protocol

__all__ = [
    "ConnectionState",
    "DEFAULT_BACKLOG",
    "MAX_QUEUED_REQUESTS",
    "Pyro4ClientFactory",
    "Pyro4Protocol",
    "Pyro4ProtocolFactory",
    "Pyro4ServerFactory",
    "in_reactor",
    "reactor",  # noqa: F822 -- resolved lazily by the module __getattr__
]


def __getattr__(name: str) -> Any:
    """``pyro.protocol.reactor`` is the global reactor, resolved only when first used.

    The original twisted-pyro README writes ``pyro.protocol.reactor.listenTCP(...)``; a lazy
    lookup keeps that working without installing a reactor as a side effect of an import.
    """
    if name == "reactor":
        from ._reactor import default_reactor

        return default_reactor()
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
