"""One name in both clients for a remote method that the client's own API shadows:
``call("close")`` on :class:`pyro.proxy.PyroDeferredService` and on
:class:`pyro.client.DeferredProxy` (the README and the docs show it), against real servers:
ours (in this reactor) and a Pyro4 4.82 thread daemon (in a background thread).

``service.close()`` / ``proxy.close()`` are the clients' own (they release the connections);
``call("close")`` must reach the servant and leave the client usable. ``callRemote`` is kept
as an alias on ``PyroDeferredService``.
"""

from __future__ import annotations

import threading
from typing import Any

import Pyro4
import pytest
from twisted.trial.unittest import TestCase

from pyro.client import DeferredProxy
from pyro.proxy import PyroDeferredService

from ..support import our_server, pyro4_peers
from ..support.asynctest import async_test

# Pyro4 4.82's request loop calls threading.Event.isSet(), deprecated since Python 3.10.
pytestmark = pytest.mark.filterwarnings("ignore:isSet\\(\\) is deprecated:DeprecationWarning")


@Pyro4.expose
class Door:
    """A servant whose methods have the names the clients keep for themselves."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # Pyro4's thread daemon calls it from several threads
        self.closed = 0

    def close(self, times: int = 1) -> str:
        with self.lock:
            self.closed += times
            return f"closed {self.closed}"

    def call(self, method: str) -> str:  # a remote method named "call", its argument "method"
        return f"remote call {method}"

    def add(self, a: int, b: int) -> int:
        return a + b


class _ShadowedNameTests:
    """Mixed into trial cases; ``uri_for(servant)`` serves ``servant`` on the case's server."""

    timeout = 15

    def uri_for(self, servant: Any) -> str:
        raise NotImplementedError

    @async_test
    async def test_deferred_service_call_reaches_a_remote_close(self):
        door = Door()
        service = PyroDeferredService(Pyro4.Proxy(self.uri_for(door)))
        self.addCleanup(service.close)
        self.assertEqual(await service.call("close"), "closed 1")
        self.assertEqual(await service.call("close", times=2), "closed 3")
        self.assertEqual(await service.callRemote("close"), "closed 4")  # the alias
        # the remote "call", whose argument is named like call()'s own first one
        self.assertEqual(await service.call("call", method="x"), "remote call x")
        self.assertEqual(await service.add(1, 2), 3)  # still open: nothing closed locally
        self.assertEqual(door.closed, 4)
        await service.close()  # the service's own close: the servant is not called
        self.assertEqual(door.closed, 4)

    @async_test
    async def test_native_proxy_call_reaches_a_remote_close(self):
        door = Door()
        proxy = DeferredProxy(self.uri_for(door))
        self.addCleanup(proxy.close)
        self.assertEqual(await proxy.call("close"), "closed 1")
        self.assertEqual(await proxy.call("close", times=2), "closed 3")
        self.assertEqual(await proxy.call("call", method="y"), "remote call y")
        self.assertEqual(await proxy.add(1, 2), 3)
        self.assertEqual(door.closed, 3)
        await proxy.close()
        self.assertEqual(door.closed, 3)


class OurServerTest(_ShadowedNameTests, TestCase):
    def uri_for(self, servant: Any) -> str:
        factory = our_server.serve(self)
        return str(factory.register(servant))


class Pyro4DaemonTest(_ShadowedNameTests, TestCase):
    def uri_for(self, servant: Any) -> str:
        peer = pyro4_peers.serve_pyro4(self, "thread")
        return str(peer.register(servant))
