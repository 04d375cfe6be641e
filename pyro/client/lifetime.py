"""A :class:`~pyro.client.DeferredProxy` nobody holds any more closes its connections, as a
``Pyro4.Proxy`` closes its socket when it is collected.

For that, what a connection keeps of its proxy (the hooks it calls, the backoff timer when
only ``min_connections`` wants it) holds the proxy weakly, and a ``weakref.finalize`` on the
proxy closes the connections it leaves behind. What must keep a proxy alive holds it
strongly: its calls (queued, or on a connection until their reply is read), its open item
streams, its connection attempts and ``connect()`` waiters.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from Pyro4 import errors

from .. import wire
from .protocol import PyroClientProtocol, _Call

if TYPE_CHECKING:
    from .proxy import DeferredProxy

__all__ = ["abandoned", "not_taken", "send_now", "unchanged", "weakly"]


def weakly(proxy: DeferredProxy, method: Callable[..., Any],
            otherwise: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """``method``, for the hooks a connection holds, which must not keep ``proxy`` alive: a
    method bound to the proxy is called through a weak reference (once the proxy is gone,
    ``otherwise`` is called instead, or nothing); any other callable (a hook a subclass or
    a program set to a function, a partial...) is returned as it is."""
    if getattr(method, "__self__", None) is not proxy:
        return method
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        bound = ref()
        if bound is not None:
            return bound(*args)
        return None if otherwise is None else otherwise(*args)

    return call


def unchanged(value: Any, msg: wire.Message) -> Any:
    return value


def not_taken(call: _Call, error: BaseException) -> bool:
    return False


def send_now(protocol: PyroClientProtocol, call: _Call) -> None:
    """A pinned call on a connection whose pool is gone: no turn to wait for."""
    protocol.waiting.remove(call)
    protocol.send(call)


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

    if reactor is None:
        from twisted.internet import reactor
    call_from_thread = getattr(reactor, "callFromThread", None)
    if call_from_thread is None:  # a test's Clock: single-threaded anyway
        close()
    else:
        call_from_thread(close)
