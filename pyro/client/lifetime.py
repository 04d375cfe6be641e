"""A :class:`~pyro.client.DeferredProxy` nobody holds any more closes its connections, as a
``Pyro4.Proxy`` closes its socket when it is collected.

For that, nothing a connection keeps holds the proxy strongly: the proxy's own hooks (the
:class:`Hooks` a connection calls for every reply) hold it weakly, and its
:class:`~pyro.client.pool.ConnectionPool`, which the connections, the backoff timer and
attempts under way do hold, refers to the proxy only weakly. A ``weakref.finalize`` on the
proxy then tells the pool to close the connections it leaves behind and to open no more
(:func:`abandoned`). What must keep a proxy alive holds it strongly: its calls (queued, or
on a connection until their reply is read), its open item streams, its connection attempts
and ``connect()`` waiters.
"""

from __future__ import annotations

import weakref
from typing import Any

from .. import wire
from .._reactor import default_reactor

__all__ = ["Hooks", "abandoned"]


class Hooks:
    """What a proxy's connections call back for every reply, holding the proxy weakly: one
    set per proxy, shared by its connections. Each hook looks the proxy's method up when
    called, so the calls allocate nothing (no bound method per call: with thousands of
    connections, extra allocations mean more, and costlier, cyclic garbage collections) and
    a hook a subclass or a program replaced (``_pyroResponseAnnotations`` as a function,
    say) is used. Once the proxy is gone the hooks do what a connection without a proxy
    needs."""

    __slots__ = ("_proxy",)

    def __init__(self, proxy: Any) -> None:  # a DeferredProxy (whose module imports this)
        self._proxy = weakref.ref(proxy)

    def response_annotations(self, annotations: dict[str, bytes], msgtype: int) -> None:
        proxy = self._proxy()
        if proxy is not None:
            proxy._pyroResponseAnnotations(annotations, msgtype)

    def result(self, value: Any, msg: wire.Message) -> Any:
        proxy = self._proxy()
        return value if proxy is None else proxy._wrap_results(value, msg)


def abandoned(pool: Any, reactor: Any) -> None:
    """A proxy nobody holds any more was garbage collected: its pool (a
    :class:`~pyro.client.pool.ConnectionPool`) closes its connections, as a collected
    ``Pyro4.Proxy`` closes its socket, and opens no more. Nothing was waiting on them (a
    call in flight, a queued one or an open item stream keeps its proxy alive). Collection
    can happen in any thread: the closing is done in the reactor thread."""
    if not pool.connections and not pool.retrying:
        return  # nothing to close, nothing to stop (and no need for a reactor)
    reactor = default_reactor(reactor)
    call_from_thread = getattr(reactor, "callFromThread", None)
    if call_from_thread is None:  # a test's Clock: single-threaded anyway
        pool.abandon()
    else:
        call_from_thread(pool.abandon)
