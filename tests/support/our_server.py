"""Test helpers: our server on a real loopback socket, and real Pyro4 clients against it.

Trial runs every test inside the reactor; a blocking ``Pyro4.Proxy`` therefore runs in a
thread (``threads.deferToThread``) so the reactor keeps serving. Everything a helper starts
is stopped by a cleanup that *waits* (ports closed, server-side connections gone), so trial
never sees a dirty reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import Pyro4
from twisted.internet import reactor, threads

from pyro.protocol import DEFAULT_BACKLOG, Pyro4ProtocolFactory


def serve(testcase: Any, factory: Pyro4ProtocolFactory | None = None,
          **factory_kwargs: Any) -> Pyro4ProtocolFactory:
    """Listen on 127.0.0.1, port 0; the factory's URIs name that port; stopped at cleanup."""
    if factory is None:
        factory = Pyro4ProtocolFactory(**factory_kwargs)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=DEFAULT_BACKLOG)
    factory.ports.append(port)
    factory.setAddress("127.0.0.1", port.getHost().port)
    testcase.addCleanup(factory.close)
    return factory


def in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking client code off the reactor thread; a Deferred of its result."""
    return threads.deferToThread(function, *args, **kwargs)


def call(uri: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """One call with a fresh, real ``Pyro4.Proxy`` (closed afterwards), in a thread."""
    def blocking() -> Any:
        with Pyro4.Proxy(uri) as proxy:
            return getattr(proxy, method)(*args, **kwargs)

    return in_thread(blocking)
