"""The native client, deterministically: MemoryReactorClock, StringTransport, no sockets, no sleeps.

The "server" here is a script: :class:`Peer` reads what the client wrote to its
``StringTransport`` (with :mod:`pyro.wire` and Pyro4's serializers) and feeds bytes back, so
each test decides exactly what arrives when: replies out of order, garbage, CONNECTFAIL,
a refused connection, a lost connection, a clock that jumps.
"""

from __future__ import annotations

import gc
import marshal
import uuid
import weakref
from typing import Any

import Pyro4
from Pyro4 import constants, errors, util
from Pyro4.core import SerializedBlob
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.python import threadable
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from pyro import wire
from pyro.client import ClientState, DeferredProxy, ItemStream, PyroClientProtocol

from ..support.config import patch_config

URI = "PYRO:obj@127.0.0.1:9999"
NS_URI = "PYRO:Pyro.NameServer@127.0.0.1:9090"
META = {"methods": ["add", "echo", "count", "fire"], "oneway": ["fire"], "attrs": ["value"]}
NS_META = {"methods": ["lookup", "list", "ping"], "oneway": [], "attrs": []}
SERPENT = util.get_serializer("serpent")


class Peer:
    """The server end of one connection the client made through the memory reactor."""

    def __init__(self, reactor: MemoryReactorClock, index: int, hmac_key: bytes | None = None):
        host, port, factory, _, _ = reactor.tcpClients[index]
        self.address = (host, port)
        self.connector = reactor.connectors[index]
        self.factory = factory
        self.hmac_key = hmac_key
        self.reader = wire.MessageReader(hmac_key=hmac_key)
        self.transport: StringTransport | None = None
        self.protocol: Any = None
        self._seen = 0

    def accept(self) -> Peer:
        self.protocol = self.factory.buildProtocol(IPv4Address("TCP", *self.address))
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        return self

    def refuse(self) -> None:
        self.factory.clientConnectionFailed(self.connector, Failure(ConnectionRefusedError()))

    def received(self) -> list[wire.Message]:
        """The messages the client wrote since the last look."""
        assert self.transport is not None
        data = self.transport.value()
        new, self._seen = data[self._seen:], len(data)
        return list(self.reader.feed(new))

    @staticmethod
    def call_of(msg: wire.Message) -> Any:
        return util.get_serializer_by_id(msg.serializer_id).deserializeCall(msg.data)

    def connect_ok(self, meta: dict[str, Any] | None = META) -> wire.Message:
        (connect,) = self.received()
        assert connect.type == wire.MSG_CONNECT
        if meta is None:
            self.send(wire.MSG_CONNECTOK, "hello", connect.seq)
        else:
            self.send(wire.MSG_CONNECTOK, {"handshake": "hello", "meta": meta}, connect.seq,
                      wire.FLAGS_META_ON_CONNECT)
        return connect

    def send(self, msg_type: int, value: Any, seq: int, flags: int = 0,
             annotations: dict[str, bytes] | None = None, serializer: Any = SERPENT) -> None:
        data, _ = serializer.serializeData(value)
        self.raw(wire.encode(msg_type, data, serializer.serializer_id, flags, seq, annotations,
                             self.hmac_key))

    def reply(self, request: wire.Message, value: Any, flags: int = 0, **kwargs: Any) -> None:
        self.send(wire.MSG_RESULT, value, request.seq, flags, **kwargs)

    def reply_stream(self, request: wire.Message, stream_id: bytes) -> None:
        """Answer as a Pyro4 server does when a call's result is an item stream."""
        self.reply(request, errors.ProtocolError("result of call is an iterator"),
                   wire.FLAGS_EXCEPTION | wire.FLAGS_ITEMSTREAMRESULT,
                   annotations={"STRM": stream_id})

    def raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))


class ClientUnitTests(TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def tearDown(self) -> None:
        self.assertEqual(self.reactor.getDelayedCalls(), [], "a timer was left behind")

    def proxy(self, uri: str = URI, **kwargs: Any) -> DeferredProxy:
        kwargs.setdefault("backoff", lambda attempt: 10.0 * attempt)
        return DeferredProxy(uri, reactor=self.reactor, **kwargs)

    def peer(self, index: int = -1, **kwargs: Any) -> Peer:
        return Peer(self.reactor, index, **kwargs)

    def connected(self, proxy: DeferredProxy, **kwargs: Any) -> Peer:
        """Let the proxy's pending connection attempt succeed, handshake included."""
        del proxy
        peer = self.peer(**kwargs).accept()
        peer.connect_ok()
        return peer

    def close(self, proxy: DeferredProxy, *peers: Peer) -> None:
        d = proxy.close()
        for peer in peers:
            if peer.transport is not None and not peer.protocol._wrappedProtocol._lost:
                peer.lose()
        self.successResultOf(d)

    # -- the happy path -------------------------------------------------------------------

    def test_handshake_then_pipelined_calls(self) -> None:
        correlation_id = uuid.uuid4()
        proxy = self.proxy(correlation_id=correlation_id, max_connections=1)
        first, second = proxy.add(1, 2), proxy.add(3, b=4)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.1", 9999))
        peer = self.peer().accept()
        connect = peer.connect_ok()
        self.assertEqual(connect.flags & wire.FLAGS_META_ON_CONNECT, wire.FLAGS_META_ON_CONNECT)
        self.assertEqual(connect.serializer_id, SERPENT.serializer_id)
        self.assertEqual(connect.annotations["CORR"], correlation_id.bytes)
        self.assertEqual(SERPENT.deserializeData(connect.data),
                         {"handshake": "hello", "object": "obj"})
        one, two = peer.received()  # both written before any reply: pipelined
        self.assertEqual((one.seq, two.seq), (1, 2))
        self.assertEqual(peer.call_of(one), ("obj", "add", (1, 2), {}))
        self.assertEqual(peer.call_of(two), ("obj", "add", (3,), {"b": 4}))
        self.assertNoResult(first)
        peer.reply(one, 3)
        self.assertEqual(self.successResultOf(first), 3)
        self.assertNoResult(second)
        peer.reply(two, 7)
        self.assertEqual(self.successResultOf(second), 7)
        self.assertEqual(proxy._pyroMethods, set(META["methods"]))
        self.close(proxy, peer)

    def test_hmac_on_every_message(self) -> None:
        proxy = self.proxy(hmac_key=b"key")
        d = proxy.echo("x")
        peer = self.peer(hmac_key=b"key").accept()
        connect = peer.connect_ok()  # the reader checked the HMAC
        self.assertIn("HMAC", connect.annotations)
        (call,) = peer.received()
        peer.reply(call, "x")
        self.assertEqual(self.successResultOf(d), "x")
        self.close(proxy, peer)

    def test_reply_with_a_bad_hmac_fails_the_calls(self) -> None:
        proxy = self.proxy(hmac_key=b"key")
        d = proxy.echo("x")
        peer = self.peer(hmac_key=b"key").accept()
        peer.connect_ok()
        (call,) = peer.received()
        peer.hmac_key = b"other"
        peer.reply(call, "x")
        self.failureResultOf(d, errors.SecurityError)
        self.assertTrue(peer.transport.disconnected)
        self.close(proxy, peer)

    def test_oneway_fires_once_written_and_keeps_sequence(self) -> None:
        proxy = self.proxy()
        fired = proxy.fire(1)
        added = proxy.add(1, 1)
        peer = self.connected(proxy)
        self.assertIsNone(self.successResultOf(fired))
        oneway, call = peer.received()
        self.assertTrue(oneway.flags & wire.FLAGS_ONEWAY)
        self.assertFalse(call.flags & wire.FLAGS_ONEWAY)
        self.assertEqual(call.seq, oneway.seq + 1)
        peer.reply(call, 2)
        self.assertEqual(self.successResultOf(added), 2)
        self.close(proxy, peer)

    def test_attributes_and_metadata_checks(self) -> None:
        proxy = self.proxy(max_connections=1)
        value, setting = proxy.getattr("value"), proxy.setattr("value", 3)
        missing, unknown = proxy.getattr("nope"), proxy.nope()
        peer = self.connected(proxy)
        self.failureResultOf(missing, AttributeError)
        self.failureResultOf(unknown, AttributeError)
        get, put = peer.received()
        self.assertEqual(peer.call_of(get), ("obj", "__getattr__", ("value",), None))
        self.assertEqual(peer.call_of(put), ("obj", "__setattr__", ("value", 3), None))
        peer.reply(get, 1)
        peer.reply(put, None)
        self.assertEqual(self.successResultOf(value), 1)
        self.assertIsNone(self.successResultOf(setting))
        self.close(proxy, peer)

    def test_metadata_fetched_when_the_server_does_not_piggyback_it(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = self.peer().accept()
        peer.connect_ok(meta=None)
        (get_metadata,) = peer.received()
        self.assertEqual(peer.call_of(get_metadata),
                         (constants.DAEMON_NAME, "get_metadata", ["obj"], {"as_lists": True}))
        peer.reply(get_metadata, META)
        (call,) = peer.received()
        peer.reply(call, 3)
        self.assertEqual(self.successResultOf(d), 3)
        self.close(proxy, peer)

    def test_remote_exception(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, "x")
        peer = self.connected(proxy)
        (call,) = peer.received()
        exc = TypeError("unsupported operand")
        exc._pyroTraceback = ["Traceback (most recent call last):\n", "TypeError: boom\n"]
        peer.reply(call, exc, wire.FLAGS_EXCEPTION)
        failure = self.failureResultOf(d, TypeError)
        self.assertEqual(failure.value._pyroTraceback, exc._pyroTraceback)
        self.close(proxy, peer)

    def test_batch(self) -> None:
        proxy = self.proxy()
        batch = proxy.batch()
        batch.add(1, 2)
        batch.echo("x")
        d = batch.send()
        peer = self.connected(proxy)
        (msg,) = peer.received()
        self.assertTrue(msg.flags & wire.FLAGS_BATCH)
        self.assertEqual(peer.call_of(msg)[1:3],
                         ("<batch>", [("add", (1, 2), {}), ("echo", ("x",), {})]))
        from Pyro4.futures import _ExceptionWrapper
        peer.reply(msg, [3, _ExceptionWrapper(ValueError("no"))], wire.FLAGS_BATCH)
        failure = self.failureResultOf(d, ValueError)
        self.assertEqual(failure.value._pyroBatchResults, [3])
        self.close(proxy, peer)

    def opened_stream(self) -> tuple[DeferredProxy, Peer, ItemStream]:
        """A proxy, its server, and the item stream ``stream-1`` a call of it returned."""
        proxy = self.proxy()
        d = proxy.count(3)
        peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply_stream(call, b"stream-1")
        return proxy, peer, self.successResultOf(d)

    def test_item_stream(self) -> None:
        proxy, peer, stream = self.opened_stream()
        self.assertIsInstance(stream, ItemStream)
        item = stream.next()
        (get_next,) = peer.received()
        self.assertEqual(peer.call_of(get_next),
                         (constants.DAEMON_NAME, "get_next_stream_item", ["stream-1"], {}))
        peer.reply(get_next, 0)
        self.assertEqual(self.successResultOf(item), 0)
        end = stream.next()
        (get_next,) = peer.received()
        peer.reply(get_next, StopIteration(), wire.FLAGS_EXCEPTION)
        self.failureResultOf(end, StopAsyncIteration)
        self.failureResultOf(stream.next(), StopAsyncIteration)
        self.successResultOf(stream.close())
        self.assertEqual(peer.received(), [])  # an ended stream needs no close_stream
        other = ItemStream("stream-2", peer.protocol._wrappedProtocol)
        self.successResultOf(other.close())
        (close,) = peer.received()
        self.assertTrue(close.flags & wire.FLAGS_ONEWAY)
        self.assertEqual(peer.call_of(close)[1:3], ("close_stream", ["stream-2"]))
        self.close(proxy, peer)

    def test_a_stream_dropped_before_its_end_is_closed(self) -> None:
        threadable.registerAsIOThread()  # (this thread is the reactor's, as in the suite)
        proxy, peer, stream = self.opened_stream()
        del stream
        gc.collect()
        (close,) = peer.received()
        self.assertTrue(close.flags & wire.FLAGS_ONEWAY)
        self.assertEqual(peer.call_of(close)[1:3], ("close_stream", ["stream-1"]))
        ended = ItemStream("stream-2", peer.protocol._wrappedProtocol)
        self.successResultOf(ended.close())
        peer.received()
        del ended  # (closed already: nothing more is sent)
        gc.collect()
        self.assertEqual(peer.received(), [])
        self.close(proxy, peer)

    def test_item_stream_without_id(self) -> None:
        proxy = self.proxy()
        d = proxy.count(3)
        peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply(call, errors.ProtocolError("iterator"),
                   wire.FLAGS_EXCEPTION | wire.FLAGS_ITEMSTREAMRESULT)
        self.failureResultOf(d, errors.ProtocolError)
        self.close(proxy, peer)

    # -- failures -------------------------------------------------------------------------

    def test_out_of_sequence_reply_fails_all_and_closes(self) -> None:
        proxy = self.proxy(max_connections=1)
        first, second = proxy.add(1, 2), proxy.add(3, 4)
        peer = self.connected(proxy)
        _, two = peer.received()
        peer.reply(two, 7)
        for d in (first, second):
            failure = self.failureResultOf(d, errors.ProtocolError)
            self.assertIn("out of sync", str(failure.value))
        self.assertTrue(peer.transport.disconnected)
        later = proxy.add(5, 6)  # goes to a new connection, at once (not a connect failure)
        peer.lose()
        self.assertEqual(len(self.reactor.tcpClients), 2)
        fresh = self.connected(proxy)
        (call,) = fresh.received()
        self.assertEqual(call.seq, 1)
        fresh.reply(call, 11)
        self.assertEqual(self.successResultOf(later), 11)
        self.close(proxy, fresh)

    def test_close_waits_for_a_broken_connection_too(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        peer.raw(b"\0" * 24)  # garbage: the connection is broken, its transport not gone
        self.failureResultOf(d, errors.ProtocolError)
        closed = proxy.close()
        self.assertNoResult(closed)
        peer.lose()
        self.successResultOf(closed)

    def test_localhost_needs_no_resolver(self) -> None:
        from Pyro4.core import URI as PyroURI

        from pyro.client import default_endpoint
        endpoint = default_endpoint(self.reactor, PyroURI("PYRO:x@localhost:1"))
        self.assertEqual((endpoint._host, endpoint._port), ("127.0.0.1", 1))

    def test_unexpected_reply_when_nothing_is_waiting(self) -> None:
        proxy = self.proxy()
        d = proxy.fire(1)
        peer = self.connected(proxy)
        self.successResultOf(d)
        peer.send(wire.MSG_RESULT, 1, 1)
        self.assertTrue(peer.transport.disconnected)
        self.close(proxy, peer)

    def test_garbage_fails_all_and_closes(self) -> None:
        proxy = self.proxy(max_connections=1)
        calls = [proxy.add(1, 2), proxy.add(3, 4)]
        peer = self.connected(proxy)
        peer.raw(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        for d in calls:
            self.failureResultOf(d, errors.ProtocolError)
        self.assertTrue(peer.transport.disconnected)
        self.close(proxy, peer)

    def test_garbage_during_the_handshake(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = self.peer().accept()
        peer.raw(b"SSH-2.0-OpenSSH_9.6\r\n" + b"\0" * 8)
        self.assertNoResult(d)  # the attempt waits until the transport is really gone
        peer.lose()
        self.failureResultOf(d, errors.CommunicationError)
        self.close(proxy, peer)
        self.reactor.advance(10)  # the backoff window passes without leaving a timer

    def test_connectfail_reports_the_reason_and_backs_off(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = self.peer().accept()
        (connect,) = peer.received()
        peer.send(wire.MSG_CONNECTFAIL, "go away", connect.seq,
                  serializer=util.get_serializer("marshal"))
        peer.lose()
        failure = self.failureResultOf(d, errors.CommunicationError)
        self.assertIn("rejected: go away", str(failure.value))
        later = proxy.add(3, 4)  # within the backoff window: waits for the next attempt
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(9.9)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(0.1)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        fresh = self.connected(proxy)
        (call,) = fresh.received()
        fresh.reply(call, 7)
        self.assertEqual(self.successResultOf(later), 7)
        self.close(proxy, fresh)

    def test_refused_connections_back_off_more_each_time(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        self.peer().refuse()
        failure = self.failureResultOf(d, errors.CommunicationError)
        self.assertIn("cannot connect to 127.0.0.1:9999", str(failure.value))
        d = proxy.add(1, 2)
        self.reactor.advance(10)
        self.peer().refuse()
        self.failureResultOf(d, errors.CommunicationError)
        d = proxy.add(1, 2)
        self.reactor.advance(19)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.reactor.advance(1)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply(call, 3)
        self.assertEqual(self.successResultOf(d), 3)
        peer.lose()  # the server goes away: the next call reconnects at once (reset)
        d = proxy.add(1, 2)
        self.assertEqual(len(self.reactor.tcpClients), 4)
        self.peer().refuse()
        self.failureResultOf(d, errors.CommunicationError)
        self.close(proxy)

    def test_connect_waits_for_a_connection(self) -> None:
        proxy = self.proxy()
        bound = proxy.connect()
        self.assertNoResult(bound)
        peer = self.connected(proxy)
        self.assertIsNone(self.successResultOf(bound))
        self.assertIsNone(self.successResultOf(proxy.connect()))
        self.close(proxy, peer)

    # -- a proxy nobody holds ----------------------------------------------------------------

    def test_a_proxy_nobody_holds_closes_its_connections(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        (call,) = peer.received()
        del proxy
        gc.collect()
        self.assertFalse(peer.transport.disconnecting)  # a call in flight keeps it alive
        peer.reply(call, 3)
        self.assertEqual(self.successResultOf(d), 3)
        gc.collect()
        self.assertTrue(peer.transport.disconnecting)  # as a collected Pyro4 proxy
        peer.lose()

    def test_an_open_item_stream_keeps_its_proxy(self) -> None:
        stream, peer = self.open_stream(self.proxy())
        gc.collect()
        self.assertFalse(peer.transport.disconnecting)
        item = stream.next()
        (get_next,) = peer.received()  # still sent in its turn by the pool
        peer.reply(get_next, 0)
        self.assertEqual(self.successResultOf(item), 0)
        del stream, item
        gc.collect()
        self.assertTrue(peer.transport.disconnecting)
        peer.lose()

    def test_a_call_queued_behind_an_abandoned_one_keeps_its_proxy(self) -> None:
        # The timed-out call still takes up the only connection until its late reply comes;
        # the queued call waits for that, with nothing but the proxy holding it.
        proxy = self.proxy(max_connections=1, max_in_flight=1)
        timed_out = proxy.invoke("add", (1, 1), timeout=1)
        peer = self.connected(proxy)
        (late,) = peer.received()
        self.reactor.advance(1)
        self.failureResultOf(timed_out, errors.TimeoutError)
        results: list[Any] = []
        proxy.add(2, 3).addBoth(results.append)  # fire and forget
        self.assertEqual(peer.received(), [])
        del proxy, timed_out
        gc.collect()
        self.assertFalse(peer.transport.disconnecting)
        peer.reply(late, 2)
        (queued,) = peer.received()
        peer.reply(queued, 5)
        self.assertEqual(results, [5])
        gc.collect()
        self.assertTrue(peer.transport.disconnecting)  # now nothing needs it
        peer.lose()

    def test_a_dropped_min_connections_proxy_stops_retrying(self) -> None:
        proxy = self.proxy(min_connections=1)
        alive = weakref.ref(proxy)
        bound = proxy.connect()
        self.peer().refuse()
        self.failureResultOf(bound, errors.CommunicationError)
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)  # the backoff timer
        del proxy, bound
        gc.collect()
        self.assertIsNone(alive())  # the timer does not keep it (nothing waits for it)
        self.reactor.advance(10)
        self.assertEqual(len(self.reactor.tcpClients), 1)  # no attempt after that

    def test_hooks_that_are_not_methods_of_the_proxy(self) -> None:
        seen: list[Any] = []

        class Logging(DeferredProxy):
            _pyroResponseAnnotations = staticmethod(lambda annotations, kind: seen.append(kind))

        proxy = Logging(URI, reactor=self.reactor)
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply(call, 3, annotations={"XTRA": b"x"})
        self.assertEqual(self.successResultOf(d), 3)
        self.assertEqual(seen, [wire.MSG_RESULT])
        self.close(proxy, peer)

    # -- max_retries (Pyro4's _pyroMaxRetries) ---------------------------------------------

    def test_max_retries_sends_lost_calls_again_in_order(self) -> None:
        proxy = self.proxy(max_retries=1, max_connections=1)
        first, second = proxy.add(1, 2), proxy.add(3, 4)
        peer = self.connected(proxy)
        self.assertEqual(len(peer.received()), 2)
        peer.lose()  # both were written, neither answered
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(len(self.reactor.tcpClients), 2)  # at once: not a connect failure
        again = self.connected(proxy)
        one, two = again.received()
        self.assertEqual([again.call_of(one), again.call_of(two)],
                         [("obj", "add", (1, 2), {}), ("obj", "add", (3, 4), {})])
        again.reply(one, 3)
        again.reply(two, 7)
        self.assertEqual((self.successResultOf(first), self.successResultOf(second)), (3, 7))
        self.assertEqual(proxy._in_flight, 0)
        self.close(proxy, again)

    def test_retried_calls_go_before_calls_made_in_errbacks_of_the_lost_ones(self) -> None:
        proxy = self.proxy(max_retries=1, max_connections=2, min_connections=2)
        made_in_errback: list[defer.Deferred[Any]] = []
        attribute = proxy.getattr("value")  # not retried: fails, and its errback calls again
        attribute.addErrback(lambda _: made_in_errback.append(proxy.add(9, 9)))
        first = self.connected(proxy)
        retried = proxy.add(3, 4)  # waits for the second connection, which is refused:
        self.peer().refuse()  # backing off, the call is pipelined on the first connection
        self.reactor.advance(10)  # backoff(1): then the second connection opens (idle)
        second = self.connected(proxy)
        self.assertEqual(len(first.received()), 2)
        self.assertEqual(second.received(), [])
        first.lose()  # the errback's new call must not overtake the older retried one
        self.assertEqual(len(made_in_errback), 1)
        (older,) = second.received()  # on the idle connection, before the errback's call
        self.assertEqual(second.call_of(older)[2:], ((3, 4), {}))
        third = self.connected(proxy)  # which waited for a connection of its own
        (newer,) = third.received()
        self.assertEqual(third.call_of(newer)[2:], ((9, 9), {}))
        second.reply(older, 7)
        third.reply(newer, 18)
        self.assertEqual(self.successResultOf(retried), 7)
        self.assertEqual(self.successResultOf(made_in_errback[0]), 18)
        self.close(proxy, second, third)

    def test_retries_run_out(self) -> None:
        proxy = self.proxy(max_retries=1)
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        peer.received()
        peer.lose()
        again = self.connected(proxy)
        again.received()
        again.lose()
        self.failureResultOf(d, errors.ConnectionClosedError)
        self.assertEqual(proxy._in_flight, 0)
        self.close(proxy)

    def test_no_retries_by_default_nor_for_attributes_batches_or_close(self) -> None:
        plain = self.proxy()
        self.assertEqual(plain.max_retries, Pyro4.config.MAX_RETRIES)
        self.assertEqual(plain.max_retries, 0)
        d = plain.add(1, 2)
        peer = self.connected(plain)
        peer.received()
        peer.lose()
        self.failureResultOf(d, errors.ConnectionClosedError)
        self.close(plain)

        proxy = self.proxy(max_retries=3, max_connections=1)
        attribute = proxy.getattr("value")
        batch = proxy.batch()
        batch.add(1, 2)
        batched = batch.send()
        peer = self.connected(proxy)
        self.assertEqual(len(peer.received()), 2)
        peer.lose()
        self.failureResultOf(attribute, errors.ConnectionClosedError)
        self.failureResultOf(batched, errors.ConnectionClosedError)

        call = proxy.add(1, 2)
        peer = self.connected(proxy)
        peer.received()
        closed = proxy.close()
        self.failureResultOf(call, errors.ConnectionClosedError)
        peer.lose()
        self.successResultOf(closed)
        self.assertEqual(len(self.reactor.tcpClients), 3)  # nothing reconnected for it

    def test_pyro4_names_for_the_settings(self) -> None:
        proxy = self.proxy()
        self.assertEqual(str(proxy._pyroUri), URI)
        proxy._pyroHmacKey = "key"  # str, as Pyro4 accepts it
        self.assertEqual(proxy._pyroHmacKey, b"key")
        proxy._pyroSerializer = "json"
        proxy._pyroHandshake = {"user": "me"}
        proxy._pyroMaxRetries = 2
        proxy._pyroTimeout = 5
        self.assertEqual((proxy.max_retries, proxy.timeout), (2, 5))
        with self.assertRaises(errors.SerializeError):  # unknown: refused at once, as Pyro4
            proxy._pyroSerializer = "nonesuch"
        bound = proxy._pyroBind()
        peer = self.peer(hmac_key=b"key").accept()
        connect = peer.connect_ok()
        self.assertTrue(self.successResultOf(bound))  # a connection had to be made
        self.assertFalse(self.successResultOf(proxy._pyroBind()))
        self.assertEqual(SERPENT.deserializeData(connect.data)["handshake"], {"user": "me"})
        d = proxy.echo("x")
        (call,) = peer.received()
        self.assertEqual(call.serializer_id, util.get_serializer("json").serializer_id)
        peer.reply(call, "x", serializer=util.get_serializer("json"))
        self.assertEqual(self.successResultOf(d), "x")
        proxy._pyroHmacKey = b"new"  # the live connection signs its next message with it
        d = proxy.echo("y")
        peer.hmac_key = peer.reader._hmac_key = b"new"
        (call,) = peer.received()
        peer.reply(call, "y", serializer=util.get_serializer("json"))
        self.assertEqual(self.successResultOf(d), "y")
        released = proxy._pyroRelease()
        peer.lose()
        self.successResultOf(released)
        self.assertEqual(len(proxy._connections), 0)

    # -- min_connections ------------------------------------------------------------------

    def test_min_connections_open_on_first_use_then_in_parallel(self) -> None:
        proxy = self.proxy(min_connections=3)
        self.assertEqual(self.reactor.tcpClients, [])  # nothing before the proxy is used
        bound = proxy.connect()
        self.assertEqual(len(self.reactor.tcpClients), 1)  # the first one alone
        first = self.connected(proxy)
        self.assertIsNone(self.successResultOf(bound))
        self.assertEqual(len(self.reactor.tcpClients), 3)  # then the others at once
        peers = [first] + [self.peer(index).accept() for index in (1, 2)]
        for peer in peers[1:]:
            peer.connect_ok()
        # three calls at once: one on each connection, none opened for them
        calls = [proxy.add(i, i) for i in range(3)]
        self.assertEqual(len(self.reactor.tcpClients), 3)
        for i, peer in enumerate(peers):
            (msg,) = peer.received()
            peer.reply(msg, 2 * i)
        self.assertEqual([self.successResultOf(d) for d in calls], [0, 2, 4])
        self.close(proxy, *peers)

    def test_min_connections_are_replaced_when_lost(self) -> None:
        proxy = self.proxy(min_connections=2, max_connections=2)
        proxy.connect()
        first = self.connected(proxy)
        second = self.peer().accept()
        second.connect_ok()
        self.assertEqual(len(self.reactor.tcpClients), 2)
        second.lose()
        self.assertEqual(len(self.reactor.tcpClients), 3)  # a replacement, at once
        third = self.connected(proxy)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        self.close(proxy, first, third)

    def test_min_connections_retry_while_idle_until_closed(self) -> None:
        proxy = self.proxy(min_connections=1)  # backoff: 10 s times the failures so far
        bound = proxy.connect()
        self.peer().refuse()
        self.failureResultOf(bound, errors.CommunicationError)
        self.reactor.advance(9.9)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(0.1)  # no call waits, yet the proxy tries again
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.peer().refuse()
        self.reactor.advance(20)
        peer = self.connected(proxy)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        self.close(proxy, peer)
        self.reactor.advance(100)  # closed: no more attempts, no timer left
        self.assertEqual(len(self.reactor.tcpClients), 3)

    def test_min_connections_within_max_connections(self) -> None:
        self.assertRaises(ValueError, self.proxy, min_connections=5, max_connections=4)
        self.assertRaises(ValueError, self.proxy, min_connections=-1)

    def test_server_closes_mid_call(self) -> None:
        proxy = self.proxy(max_connections=1)
        calls = [proxy.add(1, 2), proxy.add(3, 4)]
        peer = self.connected(proxy)
        peer.lose()
        for d in calls:
            failure = self.failureResultOf(d, errors.ConnectionClosedError)
            self.assertIn("connection lost", str(failure.value))
        later = proxy.add(1, 1)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        fresh = self.connected(proxy)
        (call,) = fresh.received()
        fresh.reply(call, 2)
        self.assertEqual(self.successResultOf(later), 2)
        self.close(proxy, fresh)

    def test_timeout_drops_the_late_reply(self) -> None:
        proxy = self.proxy(timeout=5, max_connections=1)  # the next call goes behind it
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        (call,) = peer.received()
        self.reactor.advance(5)
        failure = self.failureResultOf(d, errors.TimeoutError)
        self.assertIn("timed out", str(failure.value))
        later = proxy.invoke("add", (2, 2), timeout=None)
        (next_call,) = peer.received()
        peer.reply(call, 3)  # late: dropped, the pipeline stays in sync
        peer.reply(next_call, 4)
        self.assertEqual(self.successResultOf(later), 4)
        self.close(proxy, peer)

    def test_timeout_while_connecting(self) -> None:
        proxy = self.proxy(timeout=5)
        d = proxy.add(1, 2)
        self.reactor.advance(5)
        self.failureResultOf(d, errors.TimeoutError)
        peer = self.connected(proxy)  # the attempt goes on and the connection is kept
        self.assertEqual(peer.received(), [])
        self.close(proxy, peer)

    def test_cancel_in_flight_and_queued(self) -> None:
        proxy = self.proxy()
        queued = proxy.add(0, 0)
        queued.cancel()
        self.failureResultOf(queued, defer.CancelledError)
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        (call,) = peer.received()  # the cancelled call was never sent
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        later = proxy.add(2, 2)
        self.assertEqual(peer.received(), [])  # not behind the cancelled call: a new connection
        other = self.connected(proxy)
        (next_call,) = other.received()
        peer.reply(call, 3)
        other.reply(next_call, 4)
        self.assertEqual(self.successResultOf(later), 4)
        self.close(proxy, peer, other)

    def test_bound_on_calls_in_flight(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=2)
        calls = [proxy.add(i, 0) for i in range(3)]
        peer = self.connected(proxy)
        first, second = peer.received()
        peer.reply(first, 0)
        (third,) = peer.received()
        self.assertEqual(peer.call_of(third)[2], (2, 0))
        peer.reply(second, 1)
        peer.reply(third, 2)
        self.assertEqual([self.successResultOf(d) for d in calls], [0, 1, 2])
        self.close(proxy, peer)

    def test_pool_opens_connections_while_busy(self) -> None:
        proxy = self.proxy(max_connections=2, max_in_flight=4)
        calls = [proxy.add(i, 0) for i in range(6)]
        one = self.connected(proxy)
        self.assertEqual(len(one.received()), 1)  # the next waits for the second connection
        self.assertEqual(len(self.reactor.tcpClients), 2)
        two = self.connected(proxy)
        requests = two.received()
        self.assertEqual(len(requests), 2)  # then both busy: two per connection, pipelined
        self.assertEqual(len(one.received()), 1)
        self.assertEqual(len(self.reactor.tcpClients), 2)  # never more than max_connections
        two.reply(requests[0], "x")
        (more,) = two.received()
        self.assertEqual(more.seq, 3)
        self.close(proxy, one, two)
        for d in calls[:1] + calls[2:]:
            self.failureResultOf(d, errors.ConnectionClosedError)
        self.assertEqual(self.successResultOf(calls[1]), "x")

    def test_concurrent_connection_attempts_once_one_is_up(self) -> None:
        proxy = self.proxy(max_connections=100, max_in_flight=100)
        calls = [proxy.add(0, 0), proxy.add(1, 0)]
        self.assertEqual(len(self.reactor.tcpClients), 1)  # no connection yet: one attempt
        first = self.connected(proxy)
        self.assertEqual(len(first.received()), 1)  # one call per connection here
        self.assertEqual(len(self.reactor.tcpClients), 2)  # one attempt for the queued call
        calls += [proxy.add(i, 0) for i in range(2, 100)]
        self.assertEqual(len(self.reactor.tcpClients), 1 + 64)  # _max_attempts at once
        peers = [first]
        for index in range(1, 4):  # each attempt that ends makes room for one more
            peer = self.peer(index).accept()
            peer.connect_ok()
            (request,) = peer.received()
            self.assertEqual(peer.call_of(request)[2], (index, 0))  # queue order kept
            self.assertEqual(len(self.reactor.tcpClients), 1 + 64 + index)
            peers.append(peer)
        self.close(proxy, *peers)  # the 63 attempts still under way are cancelled
        for d in calls:
            self.failureResultOf(d, errors.ConnectionClosedError)

    def test_concurrent_attempts_that_fail_count_as_one(self) -> None:
        proxy = self.proxy(max_connections=10, max_in_flight=10)
        calls = [proxy.add(i, 0) for i in range(10)]
        first = self.connected(proxy)
        self.assertEqual(len(self.reactor.tcpClients), 1 + 9)
        for index in range(1, 10):
            self.peer(index).refuse()  # e.g. the server's listen backlog overflowed
        self.assertNoResult(calls[1])  # the connection that is up still serves the queue
        self.reactor.advance(9.9)  # backoff(1) = 10 s: one step for the nine failures
        self.assertEqual(len(self.reactor.tcpClients), 10)
        self.reactor.advance(0.1)
        self.assertEqual(len(self.reactor.tcpClients), 11)  # after a failure: one at a time
        second = self.connected(proxy)
        self.assertEqual(len(self.reactor.tcpClients), 11 + 8)  # a success: in parallel again
        (request,) = second.received()
        self.assertEqual(second.call_of(request)[2], (1, 0))
        self.close(proxy, first, second)
        for d in calls:
            self.failureResultOf(d, errors.ConnectionClosedError)

    def test_calls_fail_when_the_last_connection_and_attempt_fail(self) -> None:
        proxy = self.proxy(max_connections=3, max_in_flight=3)
        calls = [proxy.add(i, 0) for i in range(3)]
        first = self.connected(proxy)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        first.lose()  # the server goes away: the attempts under way are the calls' hope
        self.failureResultOf(calls[0], errors.ConnectionClosedError)
        self.peer(1).refuse()
        self.assertNoResult(calls[1])
        self.peer(2).refuse()
        for d in calls[1:]:
            self.failureResultOf(d, errors.CommunicationError)
        self.close(proxy)
        self.reactor.advance(10)

    def test_late_reply_to_an_abandoned_call_frees_its_place(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=1, timeout=5)
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        (call,) = peer.received()
        self.reactor.advance(5)
        self.failureResultOf(d, errors.TimeoutError)
        later = proxy.invoke("add", (2, 2), timeout=None)
        self.assertEqual(peer.received(), [])  # the connection still owes a reply
        peer.reply(call, 3)  # late: dropped, and the connection has room again
        (next_call,) = peer.received()
        peer.reply(next_call, 4)
        self.assertEqual(self.successResultOf(later), 4)
        self.close(proxy, peer)

    def test_a_call_after_an_abandoned_one_gets_a_connection_of_its_own(self) -> None:
        # The timed-out call's connection owes a reply that may come much later (the
        # server answers in order, so anything pipelined behind it waits as long): while
        # max_connections allows, the next call waits for a new connection instead.
        proxy = self.proxy(max_connections=2, timeout=5)
        d = proxy.add(1, 2)
        first = self.connected(proxy)
        (abandoned,) = first.received()
        self.reactor.advance(5)
        self.failureResultOf(d, errors.TimeoutError)
        later = proxy.invoke("add", (2, 2), timeout=None)
        self.assertEqual(first.received(), [])  # not behind the abandoned call
        second = self.connected(proxy)
        (next_call,) = second.received()
        second.reply(next_call, 4)
        self.assertEqual(self.successResultOf(later), 4)
        first.reply(abandoned, 3)  # late: dropped
        self.close(proxy, first, second)

    def test_least_loaded_connection_is_picked(self) -> None:
        proxy = self.proxy(max_connections=2, max_in_flight=6)
        calls = [proxy.add(i, 0) for i in range(2)]
        one = self.connected(proxy)
        two = self.connected(proxy)
        self.assertEqual((len(one.received()), len(two.received())), (1, 1))
        calls.append(proxy.add(2, 0))
        (busy,) = one.received()  # a tie (1 and 1): the one at that load longest
        calls.append(proxy.add(3, 0))
        (other,) = two.received()  # the least loaded
        calls.append(proxy.add(4, 0))
        (extra,) = one.received()  # a tie (2 and 2): the one at that load longest
        self.assertEqual((busy.seq, other.seq, extra.seq), (2, 2, 3))
        self.close(proxy, one, two)
        for d in calls:
            self.failureResultOf(d, errors.ConnectionClosedError)

    def test_serialization_error_fails_only_that_call(self) -> None:
        proxy = self.proxy(serializer="json")
        bad, good = proxy.echo(object()), proxy.add(1, 2)
        self.failureResultOf(bad, errors.SerializeError)
        peer = self.connected(proxy)
        (call,) = peer.received()
        self.assertEqual(call.serializer_id, util.get_serializer("json").serializer_id)
        peer.send(wire.MSG_RESULT, 3, call.seq, serializer=util.get_serializer("json"))
        self.assertEqual(self.successResultOf(good), 3)
        self.close(proxy, peer)

    def test_reply_in_the_wrong_serializer_fails_that_call(self) -> None:
        proxy = self.proxy(max_connections=1)
        d, later = proxy.add(1, 2), proxy.add(2, 2)
        peer = self.connected(proxy)
        one, two = peer.received()
        peer.send(wire.MSG_RESULT, 3, one.seq, serializer=util.get_serializer("marshal"))
        self.failureResultOf(d, errors.SerializeError)
        peer.reply(two, 4)
        self.assertEqual(self.successResultOf(later), 4)
        self.close(proxy, peer)

    def test_close_waits_for_the_connections(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = self.connected(proxy)
        closed = proxy.close()
        failure = self.failureResultOf(d, errors.ConnectionClosedError)  # at once
        self.assertIn("proxy was closed", str(failure.value))
        self.assertTrue(peer.transport.disconnecting)
        self.assertNoResult(closed)
        self.failureResultOf(proxy.add(1, 1), errors.ConnectionClosedError)  # closing
        peer.lose()
        self.successResultOf(closed)
        self.assert_usable_again(proxy)

    def assert_usable_again(self, proxy: DeferredProxy) -> None:
        """Like Pyro4's _pyroRelease: a closed proxy may be used again, on a new connection."""
        again = proxy.add(2, 2)
        fresh = self.connected(proxy)
        (call,) = fresh.received()
        fresh.reply(call, 4)
        self.assertEqual(self.successResultOf(again), 4)
        self.close(proxy, fresh)

    def test_a_cancelled_close_stops_the_waiting_not_the_closing(self) -> None:
        # (a coroutine cancelled while it awaits close() in a finally: KeptRegistration.stop)
        for wrap_proxies in (False, True):  # (True: close() waits for its children too)
            proxy = self.proxy(wrap_proxies=wrap_proxies)
            child = self.proxy()  # (held: the proxy holds its children weakly)
            if wrap_proxies:
                proxy._children.add(child)
            d = proxy.add(1, 2)
            peer = self.connected(proxy)
            with capturedLogs() as events:
                closed = proxy.close()
                closed.cancel()
                self.failureResultOf(closed, defer.CancelledError)  # not FirstError
                self.failureResultOf(d, errors.ConnectionClosedError)
                self.assertTrue(peer.transport.disconnecting)
                peer.lose()
                del closed, d
                gc.collect()  # a Deferred left with a Failure logs it when collected
            self.assertEqual([event["log_failure"].getTraceback() for event in events
                              if event.get("log_failure") is not None], [])
            self.assert_usable_again(proxy)  # the close went on: the pool is not closing

    def test_handshake_timeout(self) -> None:
        proxy = self.proxy(connect_timeout=30)
        d = proxy.add(1, 2)
        peer = self.peer().accept()  # accepts, then never answers the CONNECT
        self.reactor.advance(30)
        self.assertTrue(peer.transport.disconnected)
        peer.lose()
        failure = self.failureResultOf(d, errors.TimeoutError)
        self.assertIn("no handshake reply", str(failure.value))
        self.close(proxy)
        self.reactor.advance(10)  # let the backoff window pass

    def test_stream_end_with_pipelined_requests(self) -> None:
        proxy = self.proxy()
        stream, peer = self.open_stream(proxy)
        first, second = stream.next(), stream.next()
        one, two = peer.received()
        peer.reply(one, StopIteration(), wire.FLAGS_EXCEPTION)
        peer.reply(two, errors.PyroError("item stream terminated"), wire.FLAGS_EXCEPTION)
        self.failureResultOf(first, StopAsyncIteration)
        self.failureResultOf(second, StopAsyncIteration)
        self.close(proxy, peer)

    def test_stream_on_a_lost_connection(self) -> None:
        proxy = self.proxy()
        stream, peer = self.open_stream(proxy)
        pending = stream.next()
        peer.lose()
        self.failureResultOf(pending, errors.ConnectionClosedError)
        self.failureResultOf(stream.next(), errors.ConnectionClosedError)
        self.close(proxy)

    def test_close_while_connecting(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        self.successResultOf(proxy.close())
        self.failureResultOf(d, errors.ConnectionClosedError)

    def test_close_during_the_handshake(self) -> None:
        proxy = self.proxy()
        d = proxy.add(1, 2)
        peer = self.peer().accept()
        closed = proxy.close()
        self.failureResultOf(d, errors.ConnectionClosedError)
        self.assertTrue(peer.transport.disconnected)
        self.assertNoResult(closed)
        peer.lose()
        self.successResultOf(closed)

    def test_protocol_state(self) -> None:
        protocol = PyroClientProtocol("obj", SERPENT, location="here")
        self.assertIs(protocol.state, ClientState.HANDSHAKE)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertNoResult(protocol.ready)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIs(protocol.state, ClientState.CLOSED)
        failure = self.failureResultOf(protocol.ready, errors.ConnectionClosedError)
        self.assertIn("before the handshake", str(failure.value))

    # -- the name server ------------------------------------------------------------------

    def answer_ns(self, name: str, found: str) -> Peer:
        """Play the name server on the latest connection: handshake, then one lookup."""
        ns = self.peer().accept()
        connect = ns.connect_ok(meta=NS_META)
        self.assertEqual(SERPENT.deserializeData(connect.data)["object"],
                         constants.NAMESERVER_NAME)
        (lookup,) = ns.received()
        self.assertEqual(ns.call_of(lookup),
                         (constants.NAMESERVER_NAME, "lookup", (name,), {}))
        from Pyro4.core import URI as PyroURI
        ns.reply(lookup, PyroURI(found))
        ns.lose()  # the resolver closed its name server proxy
        return ns

    def test_pyroname_resolution(self) -> None:
        proxy = self.proxy("PYRONAME:thing", ns_uri=NS_URI)
        d = proxy.add(1, 2)
        self.assertEqual(self.reactor.tcpClients[-1][:2], ("127.0.0.1", 9090))
        self.answer_ns("thing", "PYRO:obj@127.0.0.1:9999")
        self.assertEqual(self.reactor.tcpClients[-1][:2], ("127.0.0.1", 9999))
        peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply(call, 3)
        self.assertEqual(self.successResultOf(d), 3)
        self.close(proxy, peer)

    def test_name_server_from_pyro4_config(self) -> None:
        patch_config(self, NS_HOST="127.0.0.1", NS_PORT=9191)
        proxy = self.proxy("PYRONAME:thing")
        d = proxy.add(1, 2)
        self.assertEqual(self.reactor.tcpClients[-1][:2], ("127.0.0.1", 9191))
        self.peer().refuse()
        self.failureResultOf(d, errors.NamingError)
        self.close(proxy)
        self.reactor.advance(10)

    def test_pyrometa_resolution(self) -> None:
        proxy = self.proxy("PYROMETA:kind:a,kind:b", ns_uri=NS_URI)
        d = proxy.add(1, 2)
        ns = self.peer().accept()
        ns.connect_ok(meta=NS_META)
        (listing,) = ns.received()
        _, method, _, kwargs = ns.call_of(listing)
        self.assertEqual((method, set(kwargs["metadata_all"])), ("list", {"kind:a", "kind:b"}))
        ns.reply(listing, {"thing": "PYRO:obj@127.0.0.1:9999"})
        ns.lose()
        peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply(call, 3)
        self.assertEqual(self.successResultOf(d), 3)
        self.close(proxy, peer)

    def test_patient_mode_retries_the_name_server(self) -> None:
        proxy = self.proxy("PYRONAME:thing@127.0.0.1:9090", patient=True, patient_tries=3,
                           backoff=lambda attempt: 5.0)
        d = proxy.add(1, 2)
        self.peer().refuse()  # no name server yet
        self.assertNoResult(d)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(5)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.answer_ns("thing", "PYRO:obj@127.0.0.1:9999")
        peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply(call, 3)
        self.assertEqual(self.successResultOf(d), 3)
        self.close(proxy, peer)

    def test_patient_mode_gives_up_after_max_tries(self) -> None:
        proxy = self.proxy("PYRONAME:thing@127.0.0.1:9090", patient=True, patient_tries=2,
                           backoff=lambda attempt: 5.0)
        d = proxy.add(1, 2)
        self.peer().refuse()
        self.reactor.advance(5)
        self.peer().refuse()
        failure = self.failureResultOf(d, errors.NamingError)
        self.assertIn("Failed to locate the nameserver", str(failure.value))
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.close(proxy)
        self.reactor.advance(10)

    def test_close_while_patiently_waiting(self) -> None:
        proxy = self.proxy("PYRONAME:thing@127.0.0.1:9090", patient=True,
                           backoff=lambda attempt: 5.0)
        d = proxy.add(1, 2)
        self.peer().refuse()
        self.successResultOf(proxy.close())
        self.failureResultOf(d, errors.ConnectionClosedError)

    # -- Pyro4.config.COMMTIMEOUT ---------------------------------------------------------

    def test_commtimeout_is_the_default_call_timeout(self) -> None:
        patch_config(self, COMMTIMEOUT=5.0)
        proxy = self.proxy(max_connections=1)
        explicit = self.proxy(timeout=20)
        unbounded = self.proxy(timeout=None)  # an explicit None wins too: no timeout
        patch_config(self, COMMTIMEOUT=0.0)  # read when the proxy was made, as Pyro4
        self.assertEqual((proxy.timeout, proxy._pyroTimeout), (5.0, 5.0))
        self.assertEqual((explicit.timeout, unbounded.timeout), (20, None))
        self.assertIsNone(self.proxy().timeout)  # 0 (Pyro4's default): no timeout
        d, per_call = proxy.add(1, 2), proxy.invoke("add", (2, 2), timeout=None)
        peer = self.connected(proxy)
        first, second = peer.received()
        self.reactor.advance(5)
        failure = self.failureResultOf(d, errors.TimeoutError)
        self.assertIn("after 5.0 seconds", str(failure.value))
        self.assertNoResult(per_call)  # the per-call argument wins over COMMTIMEOUT
        peer.reply(first, 3)
        peer.reply(second, 4)
        self.assertEqual(self.successResultOf(per_call), 4)
        proxy._pyroTimeout = 0  # Pyro4's setter, 0 meaning none
        self.assertIsNone(proxy.timeout)
        self.close(proxy, peer)

    def test_commtimeout_bounds_connecting_and_the_handshake(self) -> None:
        patch_config(self, COMMTIMEOUT=5.0)
        proxy, explicit = self.proxy(), self.proxy(connect_timeout=30)
        bound, other = proxy.connect(), explicit.connect()
        self.assertEqual([client[3] for client in self.reactor.tcpClients], [5.0, 30])
        peer, other_peer = self.peer(0).accept(), self.peer(1).accept()  # silent servers
        self.reactor.advance(5)
        self.assertTrue(peer.transport.disconnected)
        peer.lose()
        failure = self.failureResultOf(bound, errors.TimeoutError)
        self.assertIn("no handshake reply within 5.0 seconds", str(failure.value))
        self.assertNoResult(other)  # connect_timeout given: it wins
        other_peer.connect_ok()
        self.successResultOf(other)
        self.close(proxy)
        self.close(explicit, other_peer)
        self.reactor.advance(10)  # the backoff window

    def test_without_commtimeout_connecting_waits_30_seconds(self) -> None:
        proxy = self.proxy()
        self.assertIsNone(proxy.timeout)
        waiting = proxy.connect()
        timed = self.proxy(timeout=7)  # a timeout given to the proxy bounds connecting too
        timed_waiting = timed.connect()
        self.assertEqual([client[3] for client in self.reactor.tcpClients], [30.0, 7])
        self.close(proxy)
        self.close(timed)
        for d in (waiting, timed_waiting):  # closing fails who waited for a connection
            self.failureResultOf(d, errors.ConnectionClosedError)

    # -- SerializedBlob (KEEPSERIALIZED) --------------------------------------------------

    def test_serialized_blob_is_sent_as_pyro4_sends_it(self) -> None:
        proxy = self.proxy()
        d = proxy.echo(SerializedBlob("info", [1, {"two": 2}]))
        peer = self.connected(proxy)
        (msg,) = peer.received()
        self.assertTrue(msg.flags & wire.FLAGS_KEEPSERIALIZED)
        self.assertEqual(marshal.loads(msg.annotations["BLBI"]), ("info", "obj", "echo"))
        self.assertEqual(msg.serializer_id, SERPENT.serializer_id)
        # what Pyro4's Proxy sends: the blob's data as the call's vargs
        self.assertEqual(msg.data, SERPENT.serializeCall("obj", "echo", [1, {"two": 2}], {})[0])
        received = SerializedBlob(*marshal.loads(msg.annotations["BLBI"])[:1], msg, is_blob=True)
        self.assertEqual(received.deserialized(), [1, {"two": 2}])  # as a servant sees it
        peer.reply(msg, "ok")
        self.assertEqual(self.successResultOf(d), "ok")
        self.close(proxy, peer)

    def test_serialized_blob_must_be_the_only_argument(self) -> None:
        proxy = self.proxy()
        blob = SerializedBlob("info", [1])
        for d in (proxy.echo(blob, 2), proxy.invoke("echo", (blob,), {"x": 1})):
            failure = self.failureResultOf(d, errors.SerializeError)
            self.assertIn("must be the only argument", str(failure.value))
        d = proxy.echo(1, blob)  # as in Pyro4, only a first argument is a blob
        peer = self.connected(proxy)
        (msg,) = peer.received()
        self.assertFalse(msg.flags & wire.FLAGS_KEEPSERIALIZED)
        self.assertNotIn("BLBI", msg.annotations)
        peer.reply(msg, None)
        self.successResultOf(d)
        self.close(proxy, peer)

    def test_received_blob_is_passed_on_untouched(self) -> None:
        # (not json: Pyro4's SerializedBlob.deserialized() unpacks json's call dict, and
        # returns its key "params" instead of the data)
        marshal_ = util.get_serializer("marshal")
        data, compressed = marshal_.serializeCall("elsewhere", "orig", ["x" * 500], {},
                                                  compress=True)
        self.assertTrue(compressed)
        received = wire.Message(wire.MSG_INVOKE, data, marshal_.serializer_id,
                                wire.FLAGS_KEEPSERIALIZED | wire.FLAGS_COMPRESSED, 7,
                                {"BLBI": marshal.dumps(("info", "elsewhere", "orig"))})
        proxy = self.proxy()  # serpent; the blob keeps its own serializer
        d = proxy.echo(SerializedBlob("info", received, is_blob=True))
        peer = self.connected(proxy)
        (msg,) = peer.received()
        self.assertEqual((msg.data, msg.serializer_id), (data, marshal_.serializer_id))
        self.assertEqual(msg.flags & (wire.FLAGS_KEEPSERIALIZED | wire.FLAGS_COMPRESSED),
                         wire.FLAGS_KEEPSERIALIZED | wire.FLAGS_COMPRESSED)
        self.assertEqual(marshal.loads(msg.annotations["BLBI"]), ("info", "obj", "echo"))
        self.assertEqual(SerializedBlob("info", msg, is_blob=True).deserialized(), ["x" * 500])
        peer.send(wire.MSG_RESULT, "ok", msg.seq, serializer=marshal_)  # the reply, too
        self.assertEqual(self.successResultOf(d), "ok")
        self.close(proxy, peer)

    def test_serialized_blob_names_the_resolved_object(self) -> None:
        proxy = self.proxy("PYRONAME:thing", ns_uri=NS_URI, hmac_key=b"key")
        d = proxy.echo(SerializedBlob(("id", 1), "payload"))
        ns = self.peer(hmac_key=b"key").accept()
        ns.connect_ok(meta=NS_META)
        (lookup,) = ns.received()
        from Pyro4.core import URI as PyroURI
        ns.reply(lookup, PyroURI("PYRO:resolved@127.0.0.1:9999"))
        ns.lose()
        peer = self.connected(proxy, hmac_key=b"key")  # the HMAC covers BLBI
        (msg,) = peer.received()
        self.assertEqual(marshal.loads(msg.annotations["BLBI"]),
                         (("id", 1), "resolved", "echo"))
        self.assertEqual(SerializedBlob("?", msg, is_blob=True).deserialized(), "payload")
        peer.reply(msg, None)
        self.successResultOf(d)
        self.close(proxy, peer)

    # -- item stream requests under the proxy's bounds ------------------------------------

    def open_stream(self, proxy: DeferredProxy, peer: Peer | None = None,
                    stream_id: bytes = b"s") -> tuple[ItemStream, Peer]:
        """Call ``count`` and answer with an item stream (on a new connection if no peer)."""
        d = proxy.count(3)
        if peer is None:
            peer = self.connected(proxy)
        (call,) = peer.received()
        peer.reply_stream(call, stream_id)
        return self.successResultOf(d), peer

    def test_stream_requests_count_toward_max_in_flight(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=2)
        stream, peer = self.open_stream(proxy)
        calls = [proxy.add(1, 0), proxy.add(2, 0)]
        item = stream.next()  # two calls in flight already: it waits
        later = proxy.add(3, 0)
        first, second = peer.received()
        self.assertEqual(proxy._in_flight, 2)
        self.assertTrue(repr(proxy).endswith("2 in flight, 2 queued>"), repr(proxy))
        self.assertNoResult(item)
        peer.reply(first, 1)  # one slot free
        (get_next,) = peer.received()  # the older one of the two waiting calls
        self.assertEqual(peer.call_of(get_next)[1:3], ("get_next_stream_item", ["s"]))
        self.assertEqual(proxy._in_flight, 2)
        peer.reply(second, 2)
        (third,) = peer.received()
        self.assertEqual(peer.call_of(third)[2], (3, 0))
        peer.reply(get_next, "item")
        peer.reply(third, 3)
        self.assertEqual([self.successResultOf(d) for d in calls + [item, later]],
                         [1, 2, "item", 3])
        self.assertEqual(proxy._in_flight, 0)
        self.close(proxy, peer)

    def test_stream_requests_keep_their_order(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=1)
        stream, peer = self.open_stream(proxy)
        busy = proxy.add(0, 0)
        (call,) = peer.received()
        first, second, closed = stream.next(), stream.next(), stream.close()
        self.assertEqual(peer.received(), [])
        self.assertNoResult(closed)  # oneway: fires once written, and it is not yet
        peer.reply(call, 0)
        (one,) = peer.received()
        peer.reply(one, "a")
        (two,) = peer.received()
        self.assertEqual(self.successResultOf(first), "a")
        self.assertNoResult(closed)
        peer.reply(two, "b")
        (close,) = peer.received()
        self.assertEqual([m.seq for m in (call, one, two, close)],
                         [call.seq, call.seq + 1, call.seq + 2, call.seq + 3])
        self.assertEqual(peer.call_of(close)[1:3], ("close_stream", ["s"]))
        self.assertTrue(close.flags & wire.FLAGS_ONEWAY)
        self.assertEqual(self.successResultOf(second), "b")
        self.assertIsNone(self.successResultOf(closed))
        self.assertEqual(self.successResultOf(busy), 0)
        self.assertEqual((proxy._in_flight, proxy._pinned), (0, {}))
        self.close(proxy, peer)

    def test_stream_requests_wait_for_their_own_connection(self) -> None:
        proxy = self.proxy(max_connections=2, max_in_flight=4)  # two per connection
        stream, one = self.open_stream(proxy)
        calls = [proxy.add(i, 0) for i in range(3)]
        two = self.connected(proxy)
        on_one = one.received()
        self.assertEqual((len(on_one), len(two.received())), (2, 1))
        item = stream.next()  # its connection is full: it waits, although two has room
        self.assertEqual((one.received(), two.received()), ([], []))
        calls.append(proxy.add(3, 0))  # not held up behind it
        (other,) = two.received()
        self.assertEqual(two.call_of(other)[2], (3, 0))
        one.reply(on_one[0], 0)
        (get_next,) = one.received()  # on the stream's connection, and nowhere else
        self.assertEqual(one.call_of(get_next)[1:3], ("get_next_stream_item", ["s"]))
        self.assertEqual(two.received(), [])
        one.reply(on_one[1], 2)
        one.reply(get_next, "item")
        self.assertEqual(self.successResultOf(item), "item")
        self.close(proxy, one, two)
        self.assertEqual([self.successResultOf(calls[i]) for i in (0, 2)], [0, 2])
        for d in (calls[1], calls[3]):  # on the second connection (one each as it opened)
            self.failureResultOf(d, errors.ConnectionClosedError)

    def test_stream_request_timing_out_in_the_queue(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=1, timeout=5)
        stream, peer = self.open_stream(proxy)
        busy = proxy.invoke("add", (0, 0), timeout=None)
        (call,) = peer.received()
        item = stream.next()  # the stream's timeout is the call's: 5 s, queueing included
        self.reactor.advance(5)
        self.failureResultOf(item, errors.TimeoutError)
        self.assertEqual(proxy._pinned, {})
        peer.reply(call, 0)
        self.assertEqual(peer.received(), [])  # the timed-out request was never sent
        self.assertEqual((self.successResultOf(busy), proxy._in_flight), (0, 0))
        self.close(proxy, peer)

    def test_stream_requests_fail_in_order_when_the_connection_breaks(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=1)
        stream, peer = self.open_stream(proxy)
        sent = stream.next()
        waiting = stream.next()
        self.assertEqual(len(peer.received()), 1)
        order: list[str] = []
        sent.addErrback(lambda f: order.append("sent"))
        waiting.addErrback(lambda f: order.append("waiting"))
        peer.lose()
        self.assertEqual(order, ["sent", "waiting"])
        self.assertEqual((proxy._in_flight, proxy._pinned), (0, {}))
        self.failureResultOf(stream.next(), errors.ConnectionClosedError)
        self.close(proxy)

    def test_close_fails_waiting_stream_requests(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=1)
        stream, peer = self.open_stream(proxy)
        busy = proxy.add(0, 0)
        item = stream.next()
        closed = proxy.close()
        for d in (busy, item):
            failure = self.failureResultOf(d, errors.ConnectionClosedError)
            self.assertIn("proxy was closed", str(failure.value))
        peer.lose()
        self.successResultOf(closed)

    def test_stream_requests_carry_the_proxys_annotations(self) -> None:
        correlation_id = uuid.uuid4()
        proxy = self.proxy(correlation_id=correlation_id)
        stream, peer = self.open_stream(proxy)
        self.addCleanup(setattr, Pyro4.current_context, "annotations", {})
        Pyro4.current_context.annotations = {"XTRA": b"once"}
        item = stream.next()
        (get_next,) = peer.received()
        self.assertEqual(get_next.annotations["CORR"], correlation_id.bytes)
        self.assertEqual(get_next.annotations["XTRA"], b"once")  # used once, as Pyro4 does
        self.assertEqual(Pyro4.current_context.annotations, {})
        peer.reply(get_next, 1)
        self.assertEqual(self.successResultOf(item), 1)
        self.close(proxy, peer)
