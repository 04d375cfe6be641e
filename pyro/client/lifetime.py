"""A :class:`~pyro.client.DeferredProxy` nobody holds any more closes its connections, as a
``Pyro4.Proxy`` closes its socket when it is collected.

For that, what a connection keeps of its proxy (the :class:`Hooks` it calls, the backoff
timer when only ``min_connections`` wants it) holds the proxy weakly, and a
``weakref.finalize`` on the proxy closes the connections it leaves behind. What must keep a
proxy alive holds it strongly: its calls (queued, or on a connection until their reply is
read), its open item streams, its connection attempts and ``connect()`` waiters.
"""

from __future__ import annotations

import weakref
from typing import Any

from Pyro4 import errors

from .. import wire
from .._reactor import default_reactor
from .protocol import PyroClientProtocol, _Call

__all__ = ["Hooks", "abandoned"]


class Hooks:
    """What a proxy's connections call back, holding the proxy weakly: one set per proxy,
    shared by its connections. Each hook looks the proxy's method up when called, so the
    calls allocate nothing (no bound method per call: with thousands of connections, extra
    allocations mean more, and costlier, cyclic garbage collections) and a hook a subclass
    or a program replaced (``_pyroResponseAnnotations`` as a function, say) is used. Once
    the proxy is gone the hooks do what a connection without a pool needs."""

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

    def call_lost(self, call: _Call, error: BaseException) -> bool:
        proxy = self._proxy()
        return proxy is not None and proxy._retry_lost(call, error)

    def load_changed(self, protocol: PyroClientProtocol) -> None:
        proxy = self._proxy()
        if proxy is not None:
            proxy._load_changed(protocol)

    def schedule(self, protocol: PyroClientProtocol, call: _Call) -> None:
        proxy = self._proxy()
        if proxy is not None:
            proxy._schedule_pinned(protocol, call)
        else:  # no pool to wait for a turn in
            protocol.waiting.remove(call)
            protocol.send(call)

    def lost(self, result: Any, protocol: PyroClientProtocol) -> None:
        proxy = self._proxy()
        if proxy is not None:
            proxy._lost(result, protocol)

    def retry(self) -> None:
        proxy = self._proxy()
        if proxy is not None:
            proxy._retry()


def abandoned(connections: set[PyroClientProtocol], reactor: Any) -> None:
    """A proxy nobody holds any more was garbage collected: close its connections, as a
    collected ``Pyro4.Proxy`` closes its socket. Nothing was waiting on them (a call in
    flight, a queued one or an open item stream keeps its proxy alive). Collection can
    happen in any thread: the closing is done in the reactor thread."""
    if not connections:
        return
    protocols = list(connections)

    def close() -> None:
        for protocol in protocols:
            protocol.close(errors.ConnectionClosedError("the proxy was garbage collected"))

    reactor = default_reactor(reactor)
    call_from_thread = getattr(reactor, "callFromThread", None)
    if call_from_thread is None:  # a test's Clock: single-threaded anyway
        close()
    else:
        call_from_thread(close)
