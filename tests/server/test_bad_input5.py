"""Bad input in Pyro5 frames, over real sockets: the same treatment as Pyro4's (test_bad_input).

Pyro5's error reply where one can be sent (a CONNECTFAIL before the handshake, an exception
RESULT for a request whose header was good), a clean close otherwise, one log line, and
everybody else still served. Trial fails any test during which an error is logged as
unhandled, so each test also proves that nothing was.
"""

from __future__ import annotations

import struct
from typing import Any

import Pyro5.errors
from Pyro5 import serializers
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from pyro.wire import framing5
from pyro.wire.pyro5 import PYRO5

from ..support.pyro5_peers import patch_pyro5_config
from . import test_bad_input
from .test_pyro5 import Calculator5, call5

MARSHAL5 = serializers.MarshalSerializer.serializer_id


class ScriptedPeer5:
    """Builds Pyro5 requests as a ``Pyro5.api.Proxy`` would, and reads replies (no socket)."""

    def __init__(self, serializer: str = "serpent"):
        self.serializer = serializers.serializers[serializer]
        self.reader = PYRO5.reader()
        self.seq = 0

    def connect(self, object_id: str = "calc", handshake: Any = "hello") -> bytes:
        data = self.serializer.dumps({"handshake": handshake, "object": object_id})
        return framing5.encode(framing5.MSG_CONNECT, data, self.serializer.serializer_id)

    def invoke(self, object_id: str, method: str, *args: Any, flags: int = 0,
               **kwargs: Any) -> bytes:
        self.seq += 1
        data = self.serializer.dumpsCall(object_id, method, args, kwargs)
        return framing5.encode(framing5.MSG_INVOKE, data, self.serializer.serializer_id, flags,
                               self.seq)

    def load(self, msg: Any, serializer: Any = None) -> Any:
        return (serializer or self.serializer).loads(msg.data)


def marshal_load(msg: Any) -> Any:
    return serializers.serializers_by_id[MARSHAL5].loads(msg.data)


class RawPeer(test_bad_input.RawPeer):
    """Pyro4's raw peer (scripted bytes out, replies in, the close told), reading Pyro5."""

    def __init__(self, peer: ScriptedPeer5):
        super().__init__(peer)  # type: ignore[arg-type]
        self.received = b""  # every byte, also those no Pyro5 reader can read

    def dataReceived(self, data):
        self.received += data
        try:
            super().dataReceived(data)
        except Exception:
            return  # (not Pyro5 frames: see received)


class BadPyro5InputTest(unittest.TestCase):
    def setUp(self):
        from ..support.our_server import serve

        self.factory = serve(self)
        self.uri = self.factory.register(Calculator5(), "calc")
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def closing_lines(self) -> list[str]:
        return [event for event in self.events if event.get("log_namespace") == "pyro.protocol"
                and "closing connection" in event.get("log_format", "")]

    @defer.inlineCallbacks
    def raw(self, serializer="serpent", handshake=True):
        peer = ScriptedPeer5(serializer)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.factory.ports[0].getHost().port)
        raw = yield connectProtocol(endpoint, RawPeer(peer))
        self.addCleanup(lambda: raw.closed)
        self.addCleanup(raw.transport.loseConnection)
        if handshake:
            (ok,) = yield raw.replies_after(peer.connect("calc"), 1)
            self.assertEqual(ok.type, framing5.MSG_CONNECTOK)
        return raw

    @defer.inlineCallbacks
    def assert_still_serving(self):
        self.assertEqual((yield call5(self.uri, "add", 1, 2)), 3)

    @defer.inlineCallbacks
    def test_bad_magic_instead_of_handshake(self):
        raw = yield self.raw(handshake=False)
        connect = bytearray(raw.peer.connect())
        connect[38:40] = b"\x00\x00"
        (fail,) = yield raw.replies_after(bytes(connect), 1)
        self.assertEqual((fail.type, fail.serializer_id), (framing5.MSG_CONNECTFAIL, MARSHAL5))
        self.assertEqual(marshal_load(fail), "invalid magic number")  # Pyro5's words
        yield raw.closed
        self.assertEqual(len(self.closing_lines()), 1)
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_unknown_version_after_pyro(self):
        raw = yield self.raw(handshake=False)
        connect = bytearray(raw.peer.connect())
        struct.pack_into("!H", connect, 4, 503)
        raw.transport.write(bytes(connect))
        yield raw.closed
        # neither generation's version: answered as a Pyro4 daemon would (the factory's
        # first generation), in a Pyro4 frame: CONNECTFAIL (3), marshal (3)
        self.assertEqual(raw.received[:6], b"PYRO\x00\x30")
        self.assertEqual(struct.unpack_from("!H", raw.received, 6)[0], 3)
        self.assertTrue(raw.received.endswith(b"invalid data or unsupported protocol version"))
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_invoke_before_handshake(self):
        raw = yield self.raw(handshake=False)
        (fail,) = yield raw.replies_after(raw.peer.invoke("calc", "add", 1, 2), 1)
        self.assertEqual(fail.type, framing5.MSG_CONNECTFAIL)
        self.assertIn("invalid msg type 4 received", raw.peer.load(fail))
        yield raw.closed

    @defer.inlineCallbacks
    def test_unknown_serializer_in_handshake(self):
        raw = yield self.raw(handshake=False)
        frame = framing5.encode(framing5.MSG_CONNECT, b"{}", 9)
        (fail,) = yield raw.replies_after(frame, 1)
        self.assertEqual((fail.type, fail.serializer_id), (framing5.MSG_CONNECTFAIL, MARSHAL5))
        self.assertIn("not accepted: 9", marshal_load(fail))
        yield raw.closed

    @defer.inlineCallbacks
    def test_unknown_serializer_id_after_handshake(self):
        raw = yield self.raw()
        request = framing5.encode(framing5.MSG_INVOKE, b"???", 77, 0, 1)
        (reply,) = yield raw.replies_after(request, 1)
        self.assertEqual(reply.serializer_id, MARSHAL5)  # nobody knows 77: the error in marshal
        error = marshal_load(reply)
        self.assertIsInstance(error, Pyro5.errors.SerializeError)
        self.assertIn("not accepted: 77", str(error))
        (ok,) = yield raw.replies_after(raw.peer.invoke("calc", "add", 2, 3), 1)
        self.assertEqual(raw.peer.load(ok), 5)

    @defer.inlineCallbacks
    def test_garbage_payload(self):
        raw = yield self.raw()
        request = framing5.encode(framing5.MSG_INVOKE, b"\x00\xffnot serpent at all", 1, 0, 5)
        (reply,) = yield raw.replies_after(request, 1)
        self.assertEqual(reply.seq, 5)
        self.assertTrue(reply.flags & framing5.FLAGS_EXCEPTION)
        error = raw.peer.load(reply)
        self.assertIsInstance(error, Pyro5.errors.SerializeError)
        self.assertIn("invalid call data", str(error))
        (ok,) = yield raw.replies_after(raw.peer.invoke("calc", "add", 2, 3), 1)
        self.assertEqual(raw.peer.load(ok), 5)  # the connection is still in sync

    @defer.inlineCallbacks
    def test_call_tuple_of_wrong_shape(self):
        raw = yield self.raw()
        data = raw.peer.serializer.dumps(["only", "two"])
        (reply,) = yield raw.replies_after(framing5.encode(framing5.MSG_INVOKE, data, 1, 0, 1), 1)
        self.assertTrue(reply.flags & framing5.FLAGS_EXCEPTION)
        self.assertIsInstance(raw.peer.load(reply), Pyro5.errors.SerializeError)

    @defer.inlineCallbacks
    def test_bad_magic_after_handshake_closes_cleanly(self):
        raw = yield self.raw()
        request = bytearray(raw.peer.invoke("calc", "add", 1, 2))
        request[39] ^= 0x55
        raw.transport.write(bytes(request))
        yield raw.closed
        self.assertEqual(raw.replies[1:], [])
        self.assertEqual(len(self.closing_lines()), 1)
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_a_pyro4_frame_after_a_pyro5_handshake_closes_cleanly(self):
        from ..support.scripted_peer import ScriptedPeer

        raw = yield self.raw()
        raw.transport.write(ScriptedPeer().invoke("calc", "add", 1, 2))
        yield raw.closed
        self.assertEqual(raw.replies[1:], [])
        yield self.assert_still_serving()

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
        header = raw.peer.invoke("calc", "add", "x" * 2000, "y")[:framing5.HEADER_SIZE]
        patch_pyro5_config(self, MAX_MESSAGE_SIZE=1000)
        (reply,) = yield raw.replies_after(header, 1)
        error = raw.peer.load(reply)
        self.assertIsInstance(error, Pyro5.errors.MessageTooLargeError)
        self.assertEqual(reply.seq, raw.peer.seq)
        yield raw.closed
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_annotation_chunk_longer_than_the_annotations(self):
        raw = yield self.raw()
        chunk = struct.pack("!4sI", b"XXXX", 100) + b"abc"
        data = raw.peer.serializer.dumpsCall("calc", "add", (1, 2), {})
        header = struct.pack("!4sHBBHHII16sHH", b"PYRO", 502, framing5.MSG_INVOKE, 1, 0, 9,
                             len(data), len(chunk), b"\0" * 16, 0, framing5.MAGIC)
        raw.transport.write(header + chunk + data)
        yield raw.closed
        self.assertEqual(raw.replies[1:], [])
        yield self.assert_still_serving()

    @defer.inlineCallbacks
    def test_second_connect_after_handshake(self):
        raw = yield self.raw()
        raw.transport.write(raw.peer.connect("calc"))
        yield raw.closed  # Pyro5's daemon drops such a connection too

    @defer.inlineCallbacks
    def test_handshake_payload_not_a_dict(self):
        raw = yield self.raw(handshake=False)
        data = raw.peer.serializer.dumps("just a string")
        (fail,) = yield raw.replies_after(framing5.encode(framing5.MSG_CONNECT, data, 1), 1)
        self.assertEqual(fail.type, framing5.MSG_CONNECTFAIL)
        yield raw.closed

    @defer.inlineCallbacks
    def test_every_header_byte_flipped(self):
        """Each of the 40 header bytes of a request, flipped, on a connection of its own:
        a reply or a clean close, never an unhandled error; the server serves on."""
        good = ScriptedPeer5().invoke("calc", "add", 1, 2)
        for position in range(framing5.HEADER_SIZE):
            raw = yield self.raw()
            request = bytearray(good)
            request[position] ^= 0xFF
            answered = raw.replies_after(bytes(request) + raw.peer.invoke("calc", "add", 3, 4),
                                         2)
            # (a flipped size makes the server wait for bytes that never come: hang up)
            timeout = reactor.callLater(0.2, raw.transport.loseConnection)
            yield defer.DeferredList([answered, raw.closed], fireOnOneCallback=True)
            if timeout.active():
                timeout.cancel()
            raw.transport.loseConnection()
            yield raw.closed
            for reply in raw.replies[1:]:
                self.assertEqual(reply.type, framing5.MSG_RESULT)
        yield self.assert_still_serving()
        self.assertFalse([e for e in self.events if e.get("log_level") is not None
                          and e["log_level"] >= LogLevel.error])
