"""Shutting down with a client that does not read: ``close()`` and ``drain()`` still finish.

A client that asked for a large reply and stops reading leaves the rest of that reply in the
server's send buffer. ``factory.close()`` must not wait for it (a Pyro4 daemon's ``close()``
closes its client sockets), or one slow or hostile client could hold up a service's
shutdown for as long as it likes (review finding). Real sockets; a bug shows as a timeout.
"""

from __future__ import annotations

import socket
from typing import Any

import Pyro4
from Pyro4 import util
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from pyro import wire

from ..support.our_server import in_thread, serve

BIG = 40_000_000  # far more than the kernel's socket buffers hold


@Pyro4.expose
class Big:
    def big(self, n: int) -> str:
        return "x" * n


def request_and_never_read(port: int) -> socket.socket:
    """Connect, handshake, ask for a BIG reply and read none of it (blocking: in a thread)."""
    serializer = util.get_serializer("marshal")
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    data, _ = serializer.serializeData({"handshake": "hi", "object": "big"})
    sock.sendall(wire.encode(wire.MSG_CONNECT, data, serializer.serializer_id, 0, 0))
    reader = wire.MessageReader()
    while not list(reader.feed(sock.recv(65536))):
        pass  # the CONNECTOK
    data, _ = serializer.serializeCall("big", "big", (BIG,), {})
    sock.sendall(wire.encode(wire.MSG_INVOKE, data, serializer.serializer_id, 0, 1))
    return sock


class ShutdownWithAnUnreadReplyTest(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def stuck_client(self) -> Any:
        factory = serve(self)
        factory.register(Big(), "big")
        sock = yield in_thread(request_and_never_read, factory.ports[0].getHost().port)
        self.addCleanup(sock.close)
        while not any(protocol.transport.dataBuffer for protocol in factory.protocols):
            yield task.deferLater(reactor, 0.01, lambda: None)  # the reply is stuck, unsent
        return factory

    @defer.inlineCallbacks
    def test_close_does_not_wait_for_an_unread_reply(self) -> Any:
        factory = yield self.stuck_client()
        yield factory.close()
        self.assertEqual(factory.protocols, set())

    @defer.inlineCallbacks
    def test_drain_closes_a_busy_connection_when_time_is_up(self) -> Any:
        factory = yield self.stuck_client()
        yield factory.drain(0.2)
        self.assertEqual(factory.protocols, set())
