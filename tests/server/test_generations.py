"""Which generation a connection speaks: chosen by its first bytes, refused as the real daemons
refuse the other generation's clients.

The state machine is driven with Twisted's ``StringTransport`` (bytes in any chunks, even one
at a time); the refusals are compared byte for byte with what Pyro4's and Pyro5's own daemons
answer, over real sockets, to the same CONNECT.
"""

from __future__ import annotations

import socket

import Pyro4
import Pyro5.api
from twisted.internet import defer, threads
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from pyro.protocol import Pyro4ProtocolFactory
from pyro.server.protocol import ConnectionState
from pyro.wire.pyro4 import PYRO4
from pyro.wire.pyro5 import PYRO5

from ..support.pyro4_peers import serve_pyro4
from ..support.pyro5_peers import serve_pyro5
from ..support.scripted_peer import ScriptedPeer
from .test_bad_input5 import ScriptedPeer5
from .test_pyro5 import Calculator5


def connected(factory):
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


class FirstBytesTest(unittest.TestCase):
    def setUp(self):
        self.factory = Pyro4ProtocolFactory()
        self.factory.setAddress("127.0.0.1", 1)
        self.factory.register(Calculator5(), "calc")

    def test_pyro5_one_byte_at_a_time(self):
        protocol, transport = connected(self.factory)
        peer = ScriptedPeer5()
        connect = peer.connect("calc")
        for index in range(len(connect)):
            self.assertEqual(protocol.state, ConnectionState.SERVER)
            protocol.dataReceived(connect[index:index + 1])
        self.assertIs(protocol.codec, PYRO5)
        (ok,) = peer.reader.feed(transport.value())
        self.assertEqual(ok.type, 2)  # CONNECTOK
        self.assertEqual(protocol.state, ConnectionState.HEADER)
        transport.clear()
        protocol.dataReceived(peer.invoke("calc", "add", 1, 2))
        (reply,) = peer.reader.feed(transport.value())
        self.assertEqual(peer.load(reply), 3)

    def test_pyro4_one_byte_at_a_time_costs_nothing_per_connection(self):
        protocol, transport = connected(self.factory)
        peer = ScriptedPeer()
        connect = peer.connect("calc")
        for index in range(len(connect)):
            protocol.dataReceived(connect[index:index + 1])
        self.assertIs(protocol.codec, PYRO4)
        self.assertNotIn("codec", vars(protocol))  # the class attribute: nothing stored
        (ok,) = peer.replies(transport)
        self.assertEqual(ok.type, 2)

    def test_the_prefix_in_two_pieces_with_the_rest(self):
        protocol, transport = connected(self.factory)
        peer = ScriptedPeer5()
        connect = peer.connect("calc")
        protocol.dataReceived(connect[:5])
        protocol.dataReceived(connect[5:] + peer.invoke("calc", "add", 2, 3))
        ok, reply = peer.reader.feed(transport.value())
        self.assertEqual((ok.type, peer.load(reply)), (2, 5))

    def test_not_pyro_at_all_is_answered_as_pyro4_answers(self):
        protocol, transport = connected(self.factory)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        (fail,) = ScriptedPeer().replies(transport)
        self.assertEqual(fail.type, 3)
        self.assertTrue(transport.disconnecting)

    def test_a_close_before_the_prefix_is_complete(self):
        protocol, transport = connected(self.factory)
        protocol.dataReceived(b"PYR")
        protocol.connectionLost(None)
        self.assertEqual((transport.value(), protocol.state), (b"", ConnectionState.CLOSED))


class RefusedLikeTheRealDaemonsTest(unittest.TestCase):
    """The same CONNECT to a real daemon and to our factory serving only the other
    generation: the same bytes back, and the connection closed."""

    @defer.inlineCallbacks
    def exchange(self, port, data):
        def blocking():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(data)
                received = b""
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return received
                    received += chunk

        return (yield threads.deferToThread(blocking))

    @defer.inlineCallbacks
    def test_a_pyro4_client_of_a_pyro5_only_factory(self):
        from ..support.our_server import serve

        real = serve_pyro5(self, "multiplex")
        ours = serve(self, pyro_versions=(5,))
        connect = ScriptedPeer("serpent").connect("calc")
        expected = yield self.exchange(real.port, connect)
        got = yield self.exchange(ours.ports[0].getHost().port, connect)
        self.assertIn(b"invalid protocol version: 48", expected)
        self.assertEqual(got, expected)

    @defer.inlineCallbacks
    def test_a_pyro5_client_of_a_pyro4_only_factory(self):
        from ..support.our_server import serve

        real = serve_pyro4(self, "multiplex")
        ours = serve(self, pyro_versions=(4,))
        connect = ScriptedPeer5().connect("calc")
        expected = yield self.exchange(real.port, connect)
        got = yield self.exchange(ours.ports[0].getHost().port, connect)
        self.assertIn(b"invalid data or unsupported protocol version", expected)
        self.assertEqual(got, expected)

    @defer.inlineCallbacks
    def test_real_clients_see_the_same_errors(self):
        from ..support.our_server import serve

        ours4 = serve(self, pyro_versions=(4,))
        ours5 = serve(self, pyro_versions=(5,))

        def pyro5_client():
            try:
                Pyro5.api.Proxy("PYRO:calc@" + ours4.locationStr)._pyroBind()
            except Exception as exc:
                return type(exc).__name__, str(exc)

        def pyro4_client():
            try:
                Pyro4.Proxy("PYRO:calc@" + ours5.locationStr)._pyroBind()
            except Exception as exc:
                return type(exc).__name__, str(exc)

        self.assertEqual((yield threads.deferToThread(pyro5_client)),
                         ("ProtocolError", "invalid protocol version: 48"))
        self.assertEqual((yield threads.deferToThread(pyro4_client)),
                         ("ProtocolError", "invalid data or unsupported protocol version"))
