"""The Pyro5 native client, deterministically: MemoryReactorClock, StringTransport, no sockets.

The "server" is a script speaking Pyro5 frames (:mod:`pyro.wire.framing5` and Pyro5's own
serializers), so each test decides what arrives when: the handshake as Pyro5's daemon
answers it, replies out of order, a Pyro4 frame where a Pyro5 one belongs, a lost
connection, a clock that jumps. Every error the client reports is Pyro5's.
"""

from __future__ import annotations

import uuid
from typing import Any

from Pyro5 import errors, protocol, serializers
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from pyro import wire
from pyro.client import ClientState, DeferredProxy
from pyro.wire import framing5
from pyro.wire.pyro5 import PYRO5

URI = "PYRO:obj@127.0.0.1:9999"
META = {"methods": ["add", "count"], "oneway": [], "attrs": ["value"]}
SERPENT = serializers.serializers["serpent"]


class Pyro5Peer:
    """The server end of one connection the client made through the memory reactor."""

    def __init__(self, reactor: MemoryReactorClock, index: int = -1):
        host, port, factory, _, _ = reactor.tcpClients[index]
        self.protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.reader = PYRO5.reader()
        self._seen = 0

    def received(self) -> list[Any]:
        data = self.transport.value()
        new, self._seen = data[self._seen:], len(data)
        return list(self.reader.feed(new))

    def send(self, msg_type: int, value: Any, seq: int, flags: int = 0,
             corr_id: bytes | None = None) -> None:
        self.protocol.dataReceived(framing5.encode(msg_type, SERPENT.dumps(value), 1, flags,
                                                   seq, None, corr_id))

    def connect_ok(self) -> Any:
        (connect,) = self.received()
        assert connect.type == protocol.MSG_CONNECT
        self.send(protocol.MSG_CONNECTOK, {"handshake": "hello", "meta": META}, connect.seq)
        return connect


class Pyro5ClientUnitTests(TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def tearDown(self) -> None:
        self.assertEqual(self.reactor.getDelayedCalls(), [], "a timer was left behind")

    def proxy(self, **kwargs: Any) -> DeferredProxy:
        kwargs.setdefault("backoff", lambda attempt: 10.0 * attempt)
        return DeferredProxy(URI, reactor=self.reactor, pyro_version=5, **kwargs)

    def test_handshake_and_a_call_are_pyro5_frames(self) -> None:
        correlation_id = uuid.uuid4()
        proxy = self.proxy(correlation_id=correlation_id)
        d = proxy.add(1, 2)
        peer = Pyro5Peer(self.reactor)
        connect = peer.connect_ok()
        data = SERPENT.loads(connect.data)
        self.assertEqual(data, {"handshake": "hello", "object": "obj"})  # always the object
        self.assertEqual(connect.flags, protocol.FLAGS_CORR_ID)  # no META_ON_CONNECT bit
        self.assertEqual(connect.corr_id, correlation_id.bytes)
        (invoke,) = peer.received()
        self.assertEqual(SERPENT.loadsCall(invoke.data), ("obj", "add", (1, 2), {}))
        self.assertEqual(invoke.corr_id, correlation_id.bytes)  # in the header ...
        self.assertEqual(invoke.annotations, {})  # ... not as a CORR annotation
        peer.send(protocol.MSG_RESULT, 3, invoke.seq, corr_id=correlation_id.bytes)
        self.assertEqual(self.successResultOf(d), 3)
        self.assertEqual(proxy._pyroMethods, {"add", "count"})
        self.assertIs(peer.protocol._wrappedProtocol.codec, PYRO5)
        proxy.close()

    def test_out_of_sequence_reply_is_pyro5s_protocol_error(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = Pyro5Peer(self.reactor)
        peer.connect_ok()
        (invoke,) = peer.received()
        peer.send(protocol.MSG_RESULT, 3, invoke.seq + 5)
        error = self.failureResultOf(d).value
        self.assertIs(type(error), errors.ProtocolError)
        self.assertIn("reply sequence out of sync", str(error))
        self.assertTrue(peer.transport.disconnecting)
        proxy.close()

    def test_a_pyro4_answer_to_pyro5_is_refused_in_one_line(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = Pyro5Peer(self.reactor)
        peer.received()
        # what a Pyro4 daemon sends a Pyro5 client: a Pyro4 CONNECTFAIL
        peer.protocol.dataReceived(wire.encode(wire.MSG_CONNECTFAIL, b"x" * 40, 1))
        self.assertTrue(peer.transport.disconnecting)  # aborted at once
        peer.protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(d).value
        self.assertIsInstance(error, errors.CommunicationError)
        self.assertIn("invalid protocol version: 48", str(error))
        proxy.close()

    def test_lost_connection_and_timeout_are_pyro5s(self) -> None:
        proxy = self.proxy(timeout=5)
        d = proxy.add(1, 2)
        peer = Pyro5Peer(self.reactor)
        peer.connect_ok()
        peer.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIs(type(self.failureResultOf(d).value), errors.ConnectionClosedError)
        self.assertIs(peer.protocol._wrappedProtocol.state, ClientState.CLOSED)
        late = proxy.add(2, 2)
        self.reactor.advance(5)
        self.assertIs(type(self.failureResultOf(late).value), errors.TimeoutError)
        proxy.close()

    def test_exception_reply_keeps_pyro5s_class_and_traceback(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = Pyro5Peer(self.reactor)
        peer.connect_ok()
        (invoke,) = peer.received()
        exc = errors.NamingError("nope")
        exc._pyroTraceback = ["remote line\n"]  # type: ignore[attr-defined]
        peer.send(protocol.MSG_RESULT, exc, invoke.seq, protocol.FLAGS_EXCEPTION)
        error = self.failureResultOf(d).value
        self.assertIs(type(error), errors.NamingError)
        self.assertEqual(error._pyroTraceback, ["remote line\n"])
        proxy.close()
