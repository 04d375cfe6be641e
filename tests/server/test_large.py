"""Large messages through our server: payloads received in place, replies sent without copies.

Real ``Pyro4.Proxy`` clients on loopback sockets exercise the fast paths of
:mod:`pyro._transport` (``recv_into`` the reader's buffer; ``sendmsg`` of ``(head, payload)``,
then Twisted sending from the payload itself); ``StringTransport`` and a transport double
check the other paths and each branch of a partial send. No timing assertions.
"""

from __future__ import annotations

import os
from typing import Any

import Pyro4
from twisted.internet import defer, tcp
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from pyro import _transport, wire
from pyro.protocol import Pyro4ProtocolFactory

from ..support import our_server
from ..support.config import patch_config
from ..support.scripted_peer import ScriptedPeer

MiB = 1 << 20


@Pyro4.expose
class Blobs:
    def put(self, data: bytes) -> list[Any]:
        return [len(data), data[:8], data[-8:]]

    def get(self, size: int) -> bytes:
        return bytes(range(256)) * (size // 256)

    def echo(self, data: Any) -> Any:
        return data


class Counting:
    """Counts reads into the reader's buffer while a test runs (the original still runs)."""

    def __init__(self, testcase: unittest.TestCase):
        self.reads = 0
        read = _transport.ReadInPlace.__call__

        def counted_read(this: Any) -> Any:
            self.reads += 1
            return read(this)

        testcase.patch(_transport.ReadInPlace, "__call__", counted_read)


class RealSocketTests(unittest.TestCase):
    def serve(self, hmac_key: bytes | None = None) -> Any:
        factory = Pyro4ProtocolFactory()
        factory._pyroHmacKey = hmac_key
        our_server.serve(self, factory)
        self.factory = factory
        return factory.register(Blobs(), "blobs")

    def proxy_calls(self, uri: Any, calls: list[tuple[str, Any]], hmac_key: bytes | None = None,
                    serializer: str = "marshal") -> defer.Deferred[list[Any]]:
        def blocking() -> list[Any]:
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroSerializer = serializer
                proxy._pyroHmacKey = hmac_key
                return [getattr(proxy, method)(arg) for method, arg in calls]

        return our_server.in_thread(blocking)

    @defer.inlineCallbacks
    def test_large_arguments_and_results_arrive_whole(self):
        counting = Counting(self)
        uri = self.serve()
        payload = os.urandom(MiB) * 6
        put, got, small, got_again = yield self.proxy_calls(
            uri, [("put", payload), ("get", 6 * MiB), ("put", b"tiny"), ("get", 6 * MiB)])
        self.assertEqual(put, [len(payload), payload[:8], payload[-8:]])
        self.assertEqual(got, bytes(range(256)) * (6 * MiB // 256))
        self.assertEqual(small, [4, b"tiny", b"tiny"])
        self.assertEqual(got_again, got)
        self.assertGreater(counting.reads, 0)  # the payload was received in place
        # (whether a reply's rest was handed over depends on how much the kernel took at
        # once: WritePathTests check each case deterministically)
        for protocol in self.factory.protocols:  # Twisted's doRead is back
            self.assertNotIn("doRead", protocol.transport.__dict__)

    @defer.inlineCallbacks
    def test_keyed_large_messages(self):
        uri = self.serve(hmac_key=b"large secret")
        payload = os.urandom(3 * MiB)
        put, got = yield self.proxy_calls(uri, [("put", payload), ("get", 3 * MiB)],
                                          hmac_key=b"large secret")
        self.assertEqual(put[0], len(payload))
        self.assertEqual(len(got), 3 * MiB)

    @defer.inlineCallbacks
    def test_other_serializers(self):
        uri = self.serve()
        text = "x" * (2 * MiB)
        for serializer in ("serpent", "json"):
            (echoed,) = yield self.proxy_calls(uri, [("echo", text)], serializer=serializer)
            self.assertEqual(echoed, text)

    @defer.inlineCallbacks
    def test_the_size_limit_still_refuses_large_requests(self):
        factory = Pyro4ProtocolFactory(max_message_size=MiB)
        our_server.serve(self, factory)
        uri = factory.register(Blobs(), "blobs")
        error = yield our_server.in_thread(self._put_refused, uri, 2 * MiB)
        self.assertIsInstance(error, (Pyro4.errors.MessageTooLargeError,
                                      Pyro4.errors.ConnectionClosedError))

    @staticmethod
    def _put_refused(uri: Any, size: int) -> Exception:
        with Pyro4.Proxy(uri) as proxy:
            proxy._pyroSerializer = "marshal"
            try:
                proxy.put(b"x" * size)
            except Exception as exc:  # noqa: BLE001 -- what the client sees
                return exc
        raise AssertionError("the server accepted a message over its limit")


class _DirectTransport(StringTransport):
    """A ``StringTransport`` with what ``Pyro4Protocol._write`` uses of Twisted's TCP
    transport: its two send buffers, ``startWriting`` and the producer pause."""

    SEND_LIMIT = 128 * 1024

    def __init__(self) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000),
                         hostAddress=IPv4Address("TCP", "127.0.0.1", 9999))
        self.dataBuffer: Any = b""
        self.offset = 0
        self._tempDataBuffer: list[bytes] = []
        self.writing = False
        self.pause_checks = 0

    def startWriting(self) -> None:
        self.writing = True

    def _maybePauseProducer(self) -> None:
        self.pause_checks += 1


class _Socket:
    """Takes ``limits.pop(0)`` bytes per send (None: would block)."""

    def __init__(self, *limits: int | None):
        self.limits = list(limits)
        self.sent = b""

    def _take(self, data: bytes) -> int:
        limit = self.limits.pop(0)
        if limit is None:
            raise BlockingIOError
        taken = bytes(data[:limit])
        self.sent += taken
        return len(taken)

    def send(self, data: bytes) -> int:
        return self._take(data)

    def sendmsg(self, parts: Any) -> int:
        return self._take(b"".join(parts))


class WritePathTests(unittest.TestCase):
    def setUp(self):
        patch_config(self, ONEWAY_THREADED=False)
        self.factory = Pyro4ProtocolFactory()
        self.factory.setAddress("127.0.0.1", 9999)
        self.factory.register(Blobs(), "blobs")

    def connect(self, transport: Any) -> Any:
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        protocol.makeConnection(transport)
        peer = ScriptedPeer(serializer="marshal")
        protocol.dataReceived(peer.connect("blobs"))
        self.assertEqual(peer.replies(transport)[0].type, wire.MSG_CONNECTOK)
        return protocol, peer

    def test_a_large_reply_on_another_transport_goes_through_twisted(self):
        transport = StringTransport()
        protocol, peer = self.connect(transport)
        request = peer.invoke("blobs", "put", b"q" * (2 * MiB))
        for start in range(0, len(request), 65536):  # fed, not received in place
            protocol.dataReceived(request[start:start + 65536])
        (reply,) = peer.replies(transport)
        self.assertEqual(peer.load(reply), [2 * MiB, b"q" * 8, b"q" * 8])
        protocol.dataReceived(peer.invoke("blobs", "get", MiB))
        (reply,) = peer.replies(transport)
        self.assertEqual(len(peer.load(reply)), MiB)

    def _reply_with(self, sock: _Socket) -> tuple[_DirectTransport, bytes, bytes]:
        transport = _DirectTransport()
        protocol, peer = self.connect(transport)
        transport.clear()
        protocol._direct_socket = sock  # as _direct_socket() gives it for tcp.Server
        head, payload = wire.encode_parts(wire.MSG_RESULT, b"p" * (256 * 1024), 3, 0, 1)
        protocol._write((head, payload))
        return transport, head, payload

    def test_a_large_reply_sent_at_once(self):
        sock = _Socket(10**9)
        transport, head, payload = self._reply_with(sock)
        self.assertEqual(sock.sent, head + payload)
        self.assertEqual((transport.dataBuffer, transport.value()), (b"", b""))

    def test_the_rest_of_a_large_reply_is_sent_from_the_payload_itself(self):
        sock = _Socket(1000)
        transport, head, payload = self._reply_with(sock)
        self.assertIs(transport.dataBuffer, payload)  # not a copy of the rest
        self.assertEqual(transport.offset, 1000 - len(head))
        self.assertEqual(transport.SEND_LIMIT, _transport.SEND_LIMIT)
        self.assertTrue(transport.writing)
        self.assertEqual(transport.pause_checks, 1)
        self.assertEqual(sock.sent + payload[transport.offset:], head + payload)

    def test_a_partly_sent_head_joins_the_rest_in_twisteds_buffer(self):
        for limits in ((5,), (None,)):
            sock = _Socket(*limits)
            transport, head, payload = self._reply_with(sock)
            self.assertEqual(sock.sent + transport.value(), head + payload)

    def test_the_rest_of_a_small_reply_is_not_copied_either(self):
        transport = _DirectTransport()
        protocol, peer = self.connect(transport)
        protocol._direct_socket = _Socket(3)
        frame = wire.encode(wire.MSG_RESULT, b"small", 3, 0, 1)
        protocol._write(frame)
        self.assertIs(transport.dataBuffer, frame)
        self.assertEqual(transport.offset, 3)

    def test_only_plain_tcp_transports_get_the_fast_paths(self):
        self.assertFalse(_transport.read_in_place(StringTransport(), None, lambda n: None))
        tls = tcp.Server.__new__(tcp.Server)
        tls.TLS = True
        self.assertFalse(_transport.read_in_place(tls, None, lambda n: None))
