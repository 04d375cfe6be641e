"""Pyro4Protocol as a state machine, driven with Twisted's test doubles (no sockets, no sleeps)."""

from __future__ import annotations

import uuid
from typing import Any

import Pyro4
from Pyro4 import errors
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python import threadable
from twisted.python.failure import Failure
from twisted.trial import unittest

from pyro import wire
from pyro.protocol import MAX_QUEUED_REQUESTS, ConnectionState, Pyro4ProtocolFactory

from ..support.config import patch_config
from ..support.scripted_peer import ScriptedPeer


@Pyro4.expose
class Servant:
    def __init__(self):
        self.pending: list[defer.Deferred] = []
        self.oneway_calls: list[int] = []

    def add(self, a, b):
        return a + b

    def later(self):
        d = defer.Deferred()
        self.pending.append(d)
        return d

    async def context_after_await(self):
        before = (Pyro4.current_context.seq, Pyro4.current_context.correlation_id)
        await self.later()
        after = (Pyro4.current_context.seq, Pyro4.current_context.correlation_id)
        Pyro4.current_context.response_annotations["XTRA"] = b"kept"
        return [before == after, after[0], str(after[1])]

    def count(self, n):
        return iter(range(n))

    def hang_up(self):
        """As a Pyro4 servant may: close the caller's connection, then return."""
        Pyro4.current_context.client.close()
        return "never seen"

    @Pyro4.oneway
    def fire_and_forget(self, i):
        self.oneway_calls.append(i)
        return self.later()


class ProtocolFixture(unittest.TestCase):
    """A factory on a ``task.Clock`` and connections over ``StringTransport``."""

    def setUp(self):
        # This thread is the reactor's, as when the suite's reactor has run (a servant's
        # close() asks): the file run alone must not differ.
        threadable.registerAsIOThread()
        self.clock = task.Clock()
        self.factory = Pyro4ProtocolFactory(reactor=self.clock)
        self.factory.setAddress("127.0.0.1", 9999)
        self.servant = Servant()
        self.uri = self.factory.register(self.servant, "servant")
        patch_config(self, ONEWAY_THREADED=False)

    def connect(self, handshake=True, **peer_kwargs):
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000),
                                    hostAddress=IPv4Address("TCP", "127.0.0.1", 9999))
        protocol.makeConnection(transport)
        peer = ScriptedPeer(**peer_kwargs)
        if handshake:
            protocol.dataReceived(peer.connect("servant"))
            (reply,) = peer.replies(transport)
            self.assertEqual(reply.type, wire.MSG_CONNECTOK)
        return protocol, transport, peer


class IdleTimeoutTestCase(ProtocolFixture):
    """``idle_timeout``: idle connections are closed by one timer on the factory's clock."""

    def setUp(self):
        super().setUp()
        self.factory = Pyro4ProtocolFactory(reactor=self.clock, idle_timeout=10)
        self.factory.setAddress("127.0.0.1", 9999)
        self.servant = Servant()
        self.factory.register(self.servant, "servant")
        self.factory.doStart()  # as listening on a port does
        self.addCleanup(self.factory.doStop)

    def test_an_idle_connection_is_closed_after_the_timeout(self):
        protocol, transport, peer = self.connect()
        self.clock.pump([2.5] * 3)  # 7.5 s
        self.assertFalse(transport.disconnecting)
        self.clock.pump([2.5] * 2)  # 12.5 s: seen idle at the check after 10 s
        self.assertTrue(transport.disconnecting)

    def test_a_handshake_that_never_comes_is_idleness_too(self):
        protocol, transport, peer = self.connect(handshake=False)
        self.clock.pump([2.5] * 5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(peer.replies(transport), [])  # no reply owed: just closed

    def test_each_request_restarts_the_count(self):
        protocol, transport, peer = self.connect()
        for _ in range(4):
            self.clock.pump([2.5] * 3)  # 7.5 s idle, then a call
            protocol.dataReceived(peer.invoke("servant", "add", 1, 2))
            self.assertEqual(peer.load(peer.replies(transport)[0]), 3)
        self.assertFalse(transport.disconnecting)
        self.clock.pump([2.5] * 5)
        self.assertTrue(transport.disconnecting)

    def test_a_call_being_served_is_not_idleness(self):
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later"))
        self.clock.pump([2.5] * 20)  # 50 s waiting for the servant
        self.assertFalse(transport.disconnecting)
        self.servant.pending.pop().callback("done")
        self.assertEqual(peer.load(peer.replies(transport)[0]), "done")
        self.clock.pump([2.5] * 3)  # counted from the reply
        self.assertFalse(transport.disconnecting)
        self.clock.pump([2.5] * 2)
        self.assertTrue(transport.disconnecting)

    def test_only_the_idle_connection_goes(self):
        idle, idle_transport, _ = self.connect()
        busy, busy_transport, busy_peer = self.connect()
        for _ in range(3):
            self.clock.pump([2.5] * 2)
            busy.dataReceived(busy_peer.invoke("servant", "add", 2, 2))
        self.assertTrue(idle_transport.disconnecting)
        self.assertFalse(busy_transport.disconnecting)
        self.assertEqual([busy_peer.load(r) for r in busy_peer.replies(busy_transport)],
                         [4, 4, 4])

    def _stalled(self, transport_class=None):
        """A connection whose transport holds replies the client does not read (as Twisted's
        transport pauses its producer when its buffer is full)."""
        protocol, transport, peer = self.connect()
        if transport_class is not None:
            transport.dataBuffer, transport.offset, transport._tempDataLen = b"", 0, 0
        protocol.dataReceived(peer.invoke("servant", "add", 1, 2))
        protocol.pauseProducing()
        return protocol, transport

    def test_a_client_that_reads_no_replies_is_cut_off(self):
        protocol, transport = self._stalled(transport_class=True)
        transport._tempDataLen = 100_000  # unsent, and it stays so
        self.clock.pump([2.5] * 4)  # 10 s: first seen stalled at 2.5 s, not 10 s since
        self.assertFalse(transport.disconnecting)
        self.clock.pump([2.5])
        self.assertTrue(transport.disconnecting)
        self.assertTrue(transport.disconnected)  # aborted: what is unsent cannot go out

    def test_a_slow_reader_is_not_stalled(self):
        protocol, transport = self._stalled(transport_class=True)
        transport._tempDataLen = 100_000
        for _ in range(20):  # 50 s, a little read at every check
            self.clock.pump([2.5])
            transport._tempDataLen -= 1000
        self.assertFalse(transport.disconnecting)
        self.clock.pump([2.5] * 6)  # it stopped reading
        self.assertTrue(transport.disconnected)

    def test_a_reader_that_caught_up_counts_as_active(self):
        protocol, transport = self._stalled(transport_class=True)
        transport._tempDataLen = 100_000
        self.clock.pump([2.5] * 4)
        transport._tempDataLen = 0
        protocol.resumeProducing()  # (the transport's buffer emptied)
        self.clock.pump([2.5] * 3)  # idle from the resume on: not yet
        self.assertFalse(transport.disconnecting)
        self.clock.pump([2.5] * 2)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)  # idle: closed gracefully

    def test_a_transport_that_does_not_say_what_is_unsent_is_never_cut_off(self):
        protocol, transport = self._stalled()  # (a StringTransport has no send buffer)
        self.clock.pump([2.5] * 20)
        self.assertFalse(transport.disconnecting)

    def test_stopping_the_factory_stops_the_timer(self):
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.factory.doStop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.factory.doStart()  # (for the cleanup's doStop)

    def test_no_timer_without_idle_timeout(self):
        factory = Pyro4ProtocolFactory(reactor=self.clock)
        factory.doStart()
        self.addCleanup(factory.doStop)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # only this test's factory's
        self.assertRaises(ValueError, Pyro4ProtocolFactory, idle_timeout=0)


class ProtocolTestCase(ProtocolFixture):
    def test_states_through_a_call(self):
        protocol, transport, peer = self.connect(handshake=False)
        self.assertIs(protocol.state, ConnectionState.SERVER)
        protocol.dataReceived(peer.connect("servant"))
        self.assertEqual(peer.load(peer.replies(transport)[0]), "hello")
        self.assertIs(protocol.state, ConnectionState.HEADER)
        request = peer.invoke("servant", "later")
        protocol.dataReceived(request[:30])
        self.assertIs(protocol.state, ConnectionState.DATA)
        protocol.dataReceived(request[30:])
        self.assertIs(protocol.state, ConnectionState.RESPONSE)
        self.servant.pending.pop().callback("done")
        self.assertEqual(peer.load(peer.replies(transport)[0]), "done")
        self.assertIs(protocol.state, ConnectionState.HEADER)
        protocol.connectionLost(None)
        self.assertIs(protocol.state, ConnectionState.CLOSED)

    def test_annotations_state(self):
        protocol, transport, peer = self.connect()
        request = peer.invoke("servant", "add", 1, 2, annotations={"CORR": b"c" * 16})
        protocol.dataReceived(request[:26])
        self.assertIs(protocol.state, ConnectionState.ANNOTATIONS)

    def test_pipelined_requests_are_answered_in_order(self):
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later") + peer.invoke("servant", "add", 1, 2))
        self.assertEqual(peer.replies(transport), [])  # the second waits for the first
        self.servant.pending.pop().callback("first")
        first, second = peer.replies(transport)
        self.assertEqual((first.seq, peer.load(first)), (1, "first"))
        self.assertEqual((second.seq, peer.load(second)), (2, 3))

    def test_oneway_does_not_hold_up_the_next_request(self):
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "fire_and_forget", 7, flags=wire.FLAGS_ONEWAY)
                              + peer.invoke("servant", "add", 2, 2))
        (reply,) = peer.replies(transport)
        self.assertEqual((reply.seq, peer.load(reply)), (2, 4))
        self.assertEqual(self.servant.oneway_calls, [7])
        self.servant.pending.pop().callback(None)  # its late result is simply dropped
        self.assertEqual(peer.replies(transport), [])

    def test_current_context_survives_await(self):
        protocol_a, transport_a, peer_a = self.connect()
        protocol_b, transport_b, peer_b = self.connect()
        corr = b"A" * 16
        protocol_a.dataReceived(peer_a.invoke("servant", "context_after_await",
                                              annotations={"CORR": corr}))
        peer_b.seq = 40
        protocol_b.dataReceived(peer_b.invoke("servant", "context_after_await"))
        first_pending, second_pending = self.servant.pending
        second_pending.callback(None)
        first_pending.callback(None)
        (reply_a,) = peer_a.replies(transport_a)
        (reply_b,) = peer_b.replies(transport_b)
        same_a, seq_a, corr_a = peer_a.load(reply_a)
        same_b, seq_b, _ = peer_b.load(reply_b)
        self.assertEqual((same_a, seq_a), (True, 1))
        self.assertEqual((same_b, seq_b), (True, 41))
        self.assertEqual(reply_a.annotations["CORR"], corr)
        self.assertEqual(reply_a.annotations["XTRA"], b"kept")
        self.assertIn("41414141", corr_a.replace("-", ""))

    def test_no_call_context_is_left_in_the_reactor_thread(self):
        """After a call (and after each step of a coroutine), the reactor thread's
        ``current_context`` is no call's: a proxy used later from a timer or a callback must
        not send the last request's annotations or correlation id."""
        protocol, transport, peer = self.connect()
        corr = b"C" * 16
        protocol.dataReceived(peer.invoke("servant", "context_after_await",
                                          annotations={"CORR": corr, "XTRA": b"theirs"}))
        idle = (Pyro4.current_context.annotations, Pyro4.current_context.correlation_id,
                Pyro4.current_context.client)
        self.assertEqual(idle, ({}, None, None))  # while the coroutine waits
        # what a client in this thread sets is its own: serving calls leaves it alone
        mine = uuid.UUID(int=7)
        Pyro4.current_context.correlation_id = mine
        Pyro4.current_context.annotations = {"MINE": b"x"}
        self.addCleanup(setattr, Pyro4.current_context, "correlation_id", None)
        self.addCleanup(setattr, Pyro4.current_context, "annotations", {})
        self.servant.pending.pop().callback(None)
        (reply,) = peer.replies(transport)
        self.assertEqual(peer.load(reply)[0], True)  # the servant still saw its own facts
        self.assertEqual(reply.annotations["CORR"], corr)
        self.assertEqual(reply.annotations["XTRA"], b"kept")
        protocol.dataReceived(peer.invoke("servant", "add", 1, 2,
                                          annotations={"CORR": corr}))
        self.assertEqual(peer.load(peer.replies(transport)[0]), 3)
        self.assertEqual((Pyro4.current_context.annotations,
                          Pyro4.current_context.correlation_id,
                          Pyro4.current_context.client), ({"MINE": b"x"}, mine, None))

    def test_invoke_before_handshake_gets_connectfail_and_close(self):
        protocol, transport, peer = self.connect(handshake=False)
        with capturedLogs() as events:
            protocol.dataReceived(peer.invoke("servant", "add", 1, 2))
        (reply,) = peer.replies(transport)
        self.assertEqual(reply.type, wire.MSG_CONNECTFAIL)
        self.assertIn("invalid msg type 4", peer.load(reply))
        self.assertTrue(transport.disconnecting)
        self.assertFalse([e for e in events if e["log_level"] >= LogLevel.warn])

    def test_bad_header_after_handshake_closes_cleanly(self):
        protocol, transport, peer = self.connect()
        with capturedLogs() as events:
            protocol.dataReceived(b"NOT A PYRO MESSAGE, JUST GARBAGE BYTES")
        self.assertEqual(peer.replies(transport), [])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["log_level"], LogLevel.info)

    def test_message_too_large_gets_an_error_then_close(self):
        self.factory.max_message_size = 100
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "add", "x" * 200, "y")[:wire.HEADER_SIZE])
        (reply,) = peer.replies(transport)
        self.assertTrue(reply.flags & wire.FLAGS_EXCEPTION)
        self.assertIsInstance(peer.load(reply), errors.MessageTooLargeError)
        self.assertTrue(transport.disconnecting)

    def test_flooding_client_is_paused_then_resumed(self):
        protocol, transport, peer = self.connect()
        flood = b"".join(peer.invoke("servant", "later") for _ in range(MAX_QUEUED_REQUESTS + 2))
        protocol.dataReceived(flood)
        self.assertEqual(transport.producerState, "paused")
        while self.servant.pending and transport.producerState == "paused":
            self.servant.pending.pop().callback(None)
        self.assertEqual(transport.producerState, "producing")

    def test_a_servant_that_closes_its_callers_connection_sends_no_reply(self):
        # Pyro4's daemon closes the socket at once; Twisted would flush a reply written
        # after loseConnection(): the client must see its connection lost, as with Pyro4.
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "add", 1, 1)
                              + peer.invoke("servant", "hang_up")
                              + peer.invoke("servant", "later"))
        (reply,) = peer.replies(transport)  # the reply written before is still sent
        self.assertEqual(peer.load(reply), 2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.servant.pending, [])  # the request behind it was not served

    def test_connection_lost_mid_call_costs_only_that_call(self):
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later"))
        protocol.connectionLost(None)
        self.servant.pending.pop().callback("too late")  # nothing is written, nothing raised
        self.assertEqual(peer.replies(transport), [])
        other, other_transport, other_peer = self.connect()
        other.dataReceived(other_peer.invoke("servant", "add", 1, 1))
        self.assertEqual(other_peer.load(other_peer.replies(other_transport)[0]), 2)

    def test_stream_lifetime_on_the_reactor_clock(self):
        patch_config(self, ITER_STREAM_LIFETIME=10, ITER_STREAM_LINGER=0)
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "count", 3))
        (reply,) = peer.replies(transport)
        self.assertTrue(reply.flags & wire.FLAGS_ITEMSTREAMRESULT)
        stream_id = reply.annotations["STRM"].decode()
        protocol.dataReceived(peer.invoke("Pyro.Daemon", "get_next_stream_item", stream_id))
        self.assertEqual(peer.load(peer.replies(transport)[0]), 0)
        self.clock.advance(11)
        protocol.dataReceived(peer.invoke("Pyro.Daemon", "get_next_stream_item", stream_id))
        error = peer.load(peer.replies(transport)[0])
        self.assertIn("item stream terminated", str(error))
        self.assertEqual(self.clock.getDelayedCalls(), [])  # housekeeping stops when idle

    def test_stream_lingers_after_disconnect(self):
        patch_config(self, ITER_STREAM_LIFETIME=0, ITER_STREAM_LINGER=5)
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "count", 3))
        stream_id = peer.replies(transport)[0].annotations["STRM"].decode()
        self.clock.advance(100)  # Pyro4's layout uses 0 for "not lingering": leave time 0
        protocol.connectionLost(None)
        self.clock.advance(2)
        self.assertIn(stream_id, self.factory.streaming_responses)
        self.clock.advance(5)
        self.assertNotIn(stream_id, self.factory.streaming_responses)

    def test_stream_dropped_at_once_without_linger(self):
        patch_config(self, ITER_STREAM_LINGER=0)
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "count", 3))
        peer.replies(transport)
        self.assertEqual(len(self.factory.streaming_responses), 1)
        protocol.connectionLost(None)
        self.assertEqual(self.factory.streaming_responses, {})
        self.factory.streams.stop()


class HousekeepingTest(unittest.TestCase):
    def test_overridden_housekeeping_runs_while_listening(self):
        clock = task.Clock()
        calls = []

        class Tidy(Pyro4ProtocolFactory):
            def housekeeping(self):
                calls.append(clock.seconds())

        factory = Tidy(reactor=clock)
        factory.doStart()
        clock.advance(Pyro4.config.POLLTIMEOUT)
        clock.advance(Pyro4.config.POLLTIMEOUT)
        self.assertEqual(len(calls), 2)
        factory.doStop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_no_timer_without_an_override(self):
        clock = task.Clock()
        factory = Pyro4ProtocolFactory(reactor=clock)
        factory.doStart()
        self.assertEqual(clock.getDelayedCalls(), [])
        factory.doStop()


class RefusalTest(ProtocolFixture):
    def test_nothing_after_a_refused_handshake_is_served(self):
        class Refusing(Pyro4ProtocolFactory):
            def validateHandshake(self, conn, data):
                raise PermissionError("not you")

        self.factory = Refusing(reactor=self.clock)
        self.factory.setAddress("127.0.0.1", 9999)
        self.factory.register(self.servant, "servant", force=True)
        protocol, transport, peer = self.connect(handshake=False)
        protocol.dataReceived(peer.connect("servant") + peer.invoke("servant", "later"))
        protocol.dataReceived(peer.invoke("servant", "later"))
        (reply,) = peer.replies(transport)
        self.assertEqual((reply.type, peer.load(reply)), (wire.MSG_CONNECTFAIL, "not you"))
        self.assertEqual(self.servant.pending, [])
        self.assertTrue(transport.disconnecting)

    def test_garbage_while_a_call_is_pending_drops_the_connection_only(self):
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later") + b"X" * 24)
        self.assertTrue(transport.disconnecting)
        self.servant.pending.pop().callback("late")
        self.assertEqual(peer.replies(transport), [])


class ManualPool:
    """A thread pool that runs nothing until the test says so (in the test's own thread),
    for ``threads.deferToThreadPool``; the test sees what waits to run, in order."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Any, Any, Any, Any]] = []

    def callInThreadWithCallback(self, onResult, function, *args, **kwargs):
        self.jobs.append((onResult, function, args, kwargs))

    def run_next(self) -> None:
        onResult, function, args, kwargs = self.jobs.pop(0)
        try:
            result = function(*args, **kwargs)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)


class ClockWithThreads(task.Clock):
    """A ``task.Clock`` that also takes results back "from a thread" (at once)."""

    def callFromThread(self, function, *args, **kwargs):
        function(*args, **kwargs)


@Pyro4.expose
class Notes:
    def __init__(self) -> None:
        self.notes: list[Any] = []

    @Pyro4.oneway
    def note(self, value):
        self.notes.append(value)

    @Pyro4.oneway
    def fail(self):
        raise ValueError("the oneway call failed")

    def add(self, a, b):
        self.notes.append("add")
        return a + b


class OnewayInLineTestCase(ProtocolFixture):
    """With a thread pool and ``ONEWAY_THREADED=False``, a oneway call holds up its
    connection's next request until it is done, as in Pyro4's thread server (which runs it
    in the connection's own worker); with ``ONEWAY_THREADED`` nothing waits for it."""

    def setUp(self):
        super().setUp()
        self.pool = ManualPool()
        self.factory = Pyro4ProtocolFactory(reactor=ClockWithThreads(), threadpool=self.pool)
        self.factory.setAddress("127.0.0.1", 9999)
        self.servant = Notes()
        self.factory.register(self.servant, "servant")

    def test_a_oneway_call_holds_up_the_next_request(self):
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "note", 7, flags=wire.FLAGS_ONEWAY)
                              + peer.invoke("servant", "add", 2, 2))
        self.assertEqual(len(self.pool.jobs), 1)  # only the oneway call: the add waits
        self.assertIs(protocol.state, ConnectionState.RESPONSE)
        self.pool.run_next()
        self.assertEqual(self.servant.notes, [7])
        self.assertEqual(peer.replies(transport), [])  # (a oneway call gets no reply)
        self.pool.run_next()  # now the add
        (reply,) = peer.replies(transport)
        self.assertEqual((reply.seq, peer.load(reply)), (2, 4))
        self.assertEqual(self.servant.notes, [7, "add"])
        self.assertIs(protocol.state, ConnectionState.HEADER)

    def test_a_oneway_batch_holds_up_the_next_request(self):
        protocol, transport, peer = self.connect()
        batch = [("note", (1,), {}), ("note", (2,), {})]
        protocol.dataReceived(
            peer.invoke("servant", "<batch>", *batch, flags=wire.FLAGS_BATCH | wire.FLAGS_ONEWAY)
            + peer.invoke("servant", "add", 2, 2))
        self.pool.run_next()
        self.pool.run_next()
        self.assertEqual(self.servant.notes, [1, 2])
        self.assertEqual(len(self.pool.jobs), 1)
        self.pool.run_next()
        self.assertEqual(peer.load(peer.replies(transport)[0]), 4)
        self.assertEqual(self.servant.notes, [1, 2, "add"])

    def test_a_failing_oneway_call_sends_nothing_and_logs_no_error(self):
        protocol, transport, peer = self.connect()
        with capturedLogs() as events:
            protocol.dataReceived(peer.invoke("servant", "fail", flags=wire.FLAGS_ONEWAY)
                                  + peer.invoke("servant", "add", 2, 2))
            self.pool.run_next()
            self.pool.run_next()
        (reply,) = peer.replies(transport)
        self.assertEqual((reply.seq, peer.load(reply)), (2, 4))
        self.assertFalse([e for e in events if e["log_level"] >= LogLevel.warn])

    def test_with_oneway_threaded_the_next_request_is_served_at_once(self):
        patch_config(self, ONEWAY_THREADED=True)
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "note", 7, flags=wire.FLAGS_ONEWAY)
                              + peer.invoke("servant", "add", 2, 2))
        self.assertEqual(len(self.pool.jobs), 2)  # both at once
        self.pool.jobs.reverse()
        self.pool.run_next()  # the add first: its reply does not wait for the oneway call
        self.assertEqual(peer.load(peer.replies(transport)[0]), 4)
        self.pool.run_next()
        self.assertEqual(self.servant.notes, ["add", 7])
