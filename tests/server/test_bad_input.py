"""Bad input over real sockets: a clear error or a clean close, and everybody else still served.

Trial fails any test during which an error is logged as unhandled (``log.failure``), so each
test here also proves that nothing was logged as an unhandled error.
"""

from __future__ import annotations

import struct

from Pyro4 import constants, errors
from Pyro4.message import Message
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.trial import unittest

from pyro import wire

from ..server.test_server import Calculator
from ..support.config import patch_config
from ..support.our_server import call, serve
from ..support.scripted_peer import ScriptedPeer


class RawPeer(Protocol):
    """Sends scripted bytes; collects the replies; tells when the server closed."""

    def __init__(self, peer: ScriptedPeer):
        self.peer = peer
        self.replies: list[Message] = []
        self.closed: defer.Deferred[None] = defer.Deferred()
        self._waiting: list[tuple[int, int, defer.Deferred]] = []

    def dataReceived(self, data):
        self.replies.extend(self.peer.reader.feed(data))
        for start, end, waiter in list(self._waiting):
            if len(self.replies) >= end:
                self._waiting.remove((start, end, waiter))
                waiter.callback(self.replies[start:end])

    def connectionLost(self, reason):
        self.closed.callback(None)

    def replies_after(self, data: bytes, count: int) -> defer.Deferred:
        waiter: defer.Deferred = defer.Deferred()
        self._waiting.append((len(self.replies), len(self.replies) + count, waiter))
        self.transport.write(data)
        return waiter


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.factory = serve(self)
        self.uri = self.factory.register(Calculator(), "calc")

    @defer.inlineCallbacks
    def raw(self, serializer="serpent", handshake=True):
        peer = ScriptedPeer(serializer)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.factory.ports[0].getHost().port)
        raw = yield connectProtocol(endpoint, RawPeer(peer))
        self.addCleanup(lambda: raw.closed)
        self.addCleanup(raw.transport.loseConnection)
        if handshake:
            (ok,) = yield raw.replies_after(peer.connect("calc"), 1)
            self.assertEqual(ok.type, wire.MSG_CONNECTOK)
        return raw

    @defer.inlineCallbacks
    def assert_still_serving(self):
        self.assertEqual((yield call(self.uri, "add", 1, 2)), 3)

    @defer.inlineCallbacks
    def test_garbage_instead_of_handshake(self):
        raw = yield self.raw(handshake=False)
        (fail,) = yield raw.replies_after(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 1)
        self.assertEqual(fail.type, wire.MSG_CONNECTFAIL)
        self.assertEqual(fail.serializer_id, 3)  # no request to reply in kind to: marshal
        self.assertIn("invalid data or unsupported protocol version",
                      ScriptedPeer("marshal").load(fail))
        yield raw.closed
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_invoke_before_handshake(self):
        raw = yield self.raw(handshake=False)
        (fail,) = yield raw.replies_after(raw.peer.invoke("calc", "add", 1, 2), 1)
        self.assertEqual(fail.type, wire.MSG_CONNECTFAIL)
        self.assertIn("invalid msg type 4 received", raw.peer.load(fail))
        yield raw.closed

    @defer.inlineCallbacks
    def test_pickle_handshake_refused(self):
        raw = yield self.raw("pickle", handshake=False)
        (fail,) = yield raw.replies_after(raw.peer.connect("calc"), 1)
        self.assertEqual(fail.type, wire.MSG_CONNECTFAIL)
        self.assertEqual(fail.serializer_id, 3)  # refusals go out in marshal, as Pyro4 does
        self.assertIn("not accepted: 4", ScriptedPeer("marshal").load(fail))
        yield raw.closed

    @defer.inlineCallbacks
    def test_pickle_invoke_after_handshake_is_refused_without_unpickling(self):
        raw = yield self.raw()
        pickled = ScriptedPeer("pickle")
        request = pickled.invoke("calc", "add", 1, 2)
        (reply,) = yield raw.replies_after(request, 1)
        self.assertTrue(reply.flags & wire.FLAGS_EXCEPTION)
        error = pickled.load(reply)  # our own reply to a pickle client: safe to read here
        self.assertIsInstance(error, errors.SerializeError)
        self.assertIn("not accepted: 4", str(error))
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_unknown_serializer_id(self):
        raw = yield self.raw()
        request = wire.encode(wire.MSG_INVOKE, b"???", 77, 0, 1)
        (reply,) = yield raw.replies_after(request, 1)
        self.assertEqual(reply.serializer_id, 3)  # nobody knows 77: the error is in marshal
        self.assertIn("not accepted: 77", str(ScriptedPeer("marshal").load(reply)))

    @defer.inlineCallbacks
    def test_garbage_payload(self):
        raw = yield self.raw()
        request = wire.encode(wire.MSG_INVOKE, b"\x00\xffnot serpent at all", 1, 0, 5)
        (reply,) = yield raw.replies_after(request, 1)
        self.assertEqual(reply.seq, 5)
        self.assertTrue(reply.flags & wire.FLAGS_EXCEPTION)
        error = raw.peer.load(reply)
        self.assertIsInstance(error, errors.SerializeError)
        self.assertIn("invalid call data", str(error))
        (ok,) = yield raw.replies_after(raw.peer.invoke("calc", "add", 2, 3), 1)
        self.assertEqual(raw.peer.load(ok), 5)  # the connection is still in sync

    @defer.inlineCallbacks
    def test_call_tuple_of_wrong_shape(self):
        raw = yield self.raw()
        data, _ = raw.peer.serializer.serializeData(["only", "two"])
        (reply,) = yield raw.replies_after(wire.encode(wire.MSG_INVOKE, data, 1, 0, 1), 1)
        self.assertTrue(reply.flags & wire.FLAGS_EXCEPTION)

    @defer.inlineCallbacks
    def test_bad_checksum_after_handshake_closes_cleanly(self):
        raw = yield self.raw()
        request = bytearray(raw.peer.invoke("calc", "add", 1, 2))
        request[22] ^= 0x55
        raw.transport.write(bytes(request))
        yield raw.closed
        self.assertEqual(raw.replies[1:], [])
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_wrong_protocol_version(self):
        raw = yield self.raw(handshake=False)
        header = bytearray(raw.peer.connect("calc"))
        struct.pack_into("!H", header, 4, constants.PROTOCOL_VERSION - 1)
        (fail,) = yield raw.replies_after(bytes(header), 1)
        self.assertEqual(fail.type, wire.MSG_CONNECTFAIL)
        yield raw.closed

    @defer.inlineCallbacks
    def test_truncated_frame_then_disconnect(self):
        raw = yield self.raw()
        raw.transport.write(raw.peer.invoke("calc", "add", 1, 2)[:30])
        raw.transport.loseConnection()
        yield raw.closed
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_announced_size_over_the_limit(self):
        raw = yield self.raw()
        header = raw.peer.invoke("calc", "add", "x" * 2000, "y")[: wire.HEADER_SIZE]
        patch_config(self, MAX_MESSAGE_SIZE=1000)
        (reply,) = yield raw.replies_after(header, 1)
        self.assertIsInstance(raw.peer.load(reply), errors.MessageTooLargeError)
        yield raw.closed
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_second_connect_after_handshake(self):
        raw = yield self.raw()
        raw.transport.write(raw.peer.connect("calc"))
        yield raw.closed  # Pyro4 drops such a connection too

    @defer.inlineCallbacks
    def test_handshake_payload_not_a_dict(self):
        raw = yield self.raw(handshake=False)
        data, _ = raw.peer.serializer.serializeData("just a string")
        (fail,) = yield raw.replies_after(wire.encode(wire.MSG_CONNECT, data, 1, 0, 0), 1)
        self.assertEqual(fail.type, wire.MSG_CONNECTFAIL)
        yield raw.closed

    @defer.inlineCallbacks
    def test_real_proxy_with_oversized_request_gets_pyro4s_error(self):
        patch_config(self, MAX_MESSAGE_SIZE=0)
        self.factory.max_message_size = 2000
        with self.assertRaises(errors.CommunicationError):
            yield call(self.uri, "add", "x" * 5000, "y")
        yield self.assert_still_serving()
