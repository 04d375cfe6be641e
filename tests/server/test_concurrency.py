"""Requests pipelined on one connection: concurrent where the servant allows, replies in order.

A connection starts its requests in arrival order; one whose servant returned a Deferred or a
coroutine does not hold up the requests behind it, but every reply leaves in request order
(Pyro4 clients check sequence numbers). Thread-pool calls and session servants hold their
connection, as in Pyro4's thread server. Driven with ``StringTransport`` and raw frames
(:class:`ScriptedPeer`): no sockets, no sleeps.
"""

from __future__ import annotations

from typing import Any

import Pyro4
from twisted.internet import defer, reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from pyro import wire
from pyro.protocol import MAX_QUEUED_REQUESTS, ConnectionState, Pyro4ProtocolFactory

from ..support import our_server
from ..support.config import patch_config
from ..support.scripted_peer import ScriptedPeer
from .test_bad_input import RawPeer


class Waits:
    """What the servants below wait for: one Deferred per call, fired by the test."""

    def __init__(self) -> None:
        self.pending: dict[Any, defer.Deferred[Any]] = {}
        self.running = 0
        self.peak = 0
        self.started: list[Any] = []
        self._when: list[tuple[int, defer.Deferred[None]]] = []

    def when_running(self, count: int) -> defer.Deferred[None]:
        """Fires once ``count`` calls are in progress at once."""
        d: defer.Deferred[None] = defer.Deferred()
        self._when.append((count, d))
        return d

    async def wait(self, key: Any) -> Any:
        self.started.append(key)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            d: defer.Deferred[Any] = defer.Deferred()
            self.pending[key] = d
            for count, when in list(self._when):
                if self.running >= count:
                    self._when.remove((count, when))
                    when.callback(None)
            return await d
        finally:
            self.running -= 1

    def release(self, key: Any, value: Any = None) -> None:
        self.pending.pop(key).callback(value if value is not None else key)


WAITS = Waits()  # (reset in setUp) for the registered classes, whose instances come and go
CLOCK: Any = None  # the test's clock (set in setUp)


@Pyro4.expose
class Servant:
    async def wait(self, key: Any) -> Any:
        return await WAITS.wait(key)

    def later(self, key: Any) -> defer.Deferred[Any]:
        """Not a coroutine: a plain method that returns a Deferred."""
        return defer.ensureDeferred(WAITS.wait(key))

    def add(self, a: int, b: int) -> int:
        return a + b

    def release(self, key: Any) -> str:
        """Lets an earlier call (of this very connection, say) finish, then returns."""
        WAITS.release(key)
        return "released"

    async def release_and_wait(self, key: Any, own: Any) -> Any:
        WAITS.release(key)
        return await WAITS.wait(own)

    async def seq_after_await(self, key: Any) -> list[Any]:
        before = Pyro4.current_context.seq
        await WAITS.wait(key)
        return [before, Pyro4.current_context.seq, str(Pyro4.current_context.correlation_id)]

    def count(self, n: int) -> Any:
        return iter(range(n))

    def hang_up(self) -> str:
        Pyro4.current_context.client.close()
        return "never seen"

    @Pyro4.oneway
    def note(self, key: Any) -> None:
        WAITS.started.append(key)

    async def ticks(self, n: int) -> Any:
        """An async generator whose every item waits a second on the test's clock."""
        for i in range(n):
            await task.deferLater(CLOCK, 1, lambda: None)
            yield i


@Pyro4.expose
@Pyro4.behavior(instance_mode="session")
class SessionServant:
    """One instance per connection: never sees two of its calls at once."""

    async def wait(self, key: Any) -> Any:
        return await WAITS.wait(key)


@Pyro4.expose
@Pyro4.behavior(instance_mode="percall")
class PerCallServant:
    async def wait(self, key: Any) -> Any:
        return await WAITS.wait(key)


class ThreadlessPool:
    """A thread pool whose "threads" the test runs by hand, one job at a time."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def callInThreadWithCallback(self, on_result: Any, function: Any, *args: Any,
                                 **kwargs: Any) -> None:
        self.jobs.append((on_result, function, args, kwargs))

    def run_next(self) -> None:
        on_result, function, args, kwargs = self.jobs.pop(0)
        on_result(True, function(*args, **kwargs))


class ClockWithThreads(task.Clock):
    def callFromThread(self, function: Any, *args: Any, **kwargs: Any) -> None:
        function(*args, **kwargs)  # the "pool" runs in this thread anyway


class Fixture(unittest.TestCase):
    threadpool: Any = None

    def setUp(self) -> None:
        global WAITS, CLOCK
        WAITS = Waits()
        self.waits = WAITS
        self.clock = CLOCK = ClockWithThreads()
        self.factory = Pyro4ProtocolFactory(reactor=self.clock, threadpool=self.threadpool)
        self.factory.setAddress("127.0.0.1", 9999)
        self.factory.register(Servant(), "servant")
        self.factory.register(SessionServant, "session", force=True)
        self.factory.register(PerCallServant, "percall", force=True)
        patch_config(self, ONEWAY_THREADED=False)

    def connect(self) -> tuple[Any, StringTransport, ScriptedPeer]:
        address = IPv4Address("TCP", "127.0.0.1", 5000)
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address,
                                    hostAddress=IPv4Address("TCP", "127.0.0.1", 9999))
        protocol.makeConnection(transport)
        peer = ScriptedPeer()
        protocol.dataReceived(peer.connect("servant"))
        (reply,) = peer.replies(transport)
        self.assertEqual(reply.type, wire.MSG_CONNECTOK)
        return protocol, transport, peer

    def replies(self, peer: ScriptedPeer, transport: StringTransport) -> list[tuple[int, Any]]:
        return [(msg.seq, peer.load(msg)) for msg in peer.replies(transport)]


class ConcurrentRequestsTest(Fixture):
    def test_pipelined_calls_to_an_async_servant_run_concurrently(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(b"".join(peer.invoke("servant", "wait", key) for key in "abc"))
        self.assertEqual(self.waits.started, ["a", "b", "c"])  # all three, in order
        self.assertEqual(self.waits.peak, 3)
        self.assertIs(protocol.state, ConnectionState.RESPONSE)

    def test_replies_leave_in_request_order_when_a_later_one_finishes_first(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(b"".join(peer.invoke("servant", "wait", key) for key in "abc"))
        self.waits.release("c")
        self.waits.release("b")
        self.assertEqual(peer.replies(transport), [])  # nothing before the first reply
        self.waits.release("a")
        self.assertEqual(self.replies(peer, transport), [(1, "a"), (2, "b"), (3, "c")])
        self.assertIsNone(protocol._serving)  # an idle connection keeps no list
        self.assertIs(protocol.state, ConnectionState.HEADER)

    def test_an_answer_at_once_waits_for_the_replies_before_it(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later", "slow")
                              + peer.invoke("servant", "add", 1, 2)
                              + peer.invoke("servant", "note", "oneway", flags=wire.FLAGS_ONEWAY)
                              + peer.invoke("servant", "wait", "last"))
        self.assertEqual(self.waits.started, ["slow", "oneway", "last"])  # add ran too
        self.assertEqual(peer.replies(transport), [])
        self.waits.release("slow")
        self.assertEqual(self.replies(peer, transport), [(1, "slow"), (2, 3)])
        self.waits.release("last")
        self.assertEqual(self.replies(peer, transport), [(4, "last")])  # the oneway owes none

    def test_a_call_that_completes_earlier_ones_as_it_runs_keeps_its_place(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "wait", "a")
                              + peer.invoke("servant", "release", "a")  # a is done meanwhile
                              + peer.invoke("servant", "wait", "b")
                              + peer.invoke("servant", "release_and_wait", "b", "c")
                              + peer.invoke("servant", "add", 1, 1))
        self.assertEqual(self.replies(peer, transport),
                         [(1, "a"), (2, "released"), (3, "b")])
        self.assertEqual(self.waits.started, ["a", "b", "c"])
        self.waits.release("c")
        self.assertEqual(self.replies(peer, transport), [(4, "c"), (5, 2)])
        self.assertIsNone(protocol._serving)

    def test_each_concurrent_call_keeps_its_own_context(self) -> None:
        protocol, transport, peer = self.connect()
        corr = {1: b"1" * 16, 2: b"2" * 16}
        protocol.dataReceived(peer.invoke("servant", "seq_after_await", "x",
                                          annotations={"CORR": corr[1]})
                              + peer.invoke("servant", "seq_after_await", "y",
                                            annotations={"CORR": corr[2]}))
        self.waits.release("y")
        self.waits.release("x")
        (seq1, one), (seq2, two) = self.replies(peer, transport)
        self.assertEqual(one[:2], [1, 1])
        self.assertEqual(two[:2], [2, 2])
        self.assertIn("31313131", one[2].replace("-", ""))
        self.assertIn("32323232", two[2].replace("-", ""))

    def test_percall_servants_run_concurrently(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("percall", "wait", 1) + peer.invoke("percall", "wait", 2))
        self.assertEqual(self.waits.peak, 2)

    def test_a_session_servant_sees_one_call_at_a_time(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("session", "wait", 1) + peer.invoke("session", "wait", 2)
                              + peer.invoke("servant", "wait", 3))
        self.assertEqual(self.waits.started, [1])  # the session call holds the connection
        self.waits.release(1)
        self.assertEqual(self.waits.started, [1, 2])
        self.assertEqual(self.replies(peer, transport), [(1, 1)])
        self.waits.release(2)
        self.assertEqual(self.waits.started, [1, 2, 3])
        self.waits.release(3)
        self.assertEqual(self.replies(peer, transport), [(2, 2), (3, 3)])
        self.assertEqual(self.waits.peak, 1)

    def test_a_session_call_behind_concurrent_ones_starts_at_once(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "wait", "a")
                              + peer.invoke("session", "wait", "s")
                              + peer.invoke("servant", "wait", "b"))
        self.assertEqual(self.waits.started, ["a", "s"])  # b waits for the session call
        self.waits.release("s")  # done, but its reply waits for a's
        self.assertEqual(self.waits.started, ["a", "s", "b"])
        self.assertEqual(peer.replies(transport), [])
        self.waits.release("a")
        self.waits.release("b")
        self.assertEqual(self.replies(peer, transport), [(1, "a"), (2, "s"), (3, "b")])

    def test_a_batch_without_a_thread_pool_does_not_hold_the_connection(self) -> None:
        protocol, transport, peer = self.connect()
        batch = peer.invoke("servant", "<batch>", ("wait", ("in batch",), {}), ("add", (1, 1), {}),
                            flags=wire.FLAGS_BATCH)
        protocol.dataReceived(batch + peer.invoke("servant", "wait", "after"))
        self.assertEqual(self.waits.started, ["in batch", "after"])
        self.waits.release("after")
        self.waits.release("in batch")
        self.assertEqual(self.replies(peer, transport), [(1, ["in batch", 2]), (2, "after")])

    def test_at_most_max_queued_requests_run_at_once_and_reading_pauses(self) -> None:
        protocol, transport, peer = self.connect()
        flood = b"".join(peer.invoke("servant", "wait", i) for i in range(MAX_QUEUED_REQUESTS + 5))
        protocol.dataReceived(flood)
        self.assertEqual(self.waits.peak, MAX_QUEUED_REQUESTS)
        self.assertEqual(transport.producerState, "paused")
        for i in range(5):  # answered in order: room for the five queued
            self.waits.release(i)
        self.assertEqual(len(self.waits.started), MAX_QUEUED_REQUESTS + 5)
        self.assertEqual(self.waits.peak, MAX_QUEUED_REQUESTS)
        resume_at = 5 + MAX_QUEUED_REQUESTS // 2 + 1  # then under half are unanswered
        for i in range(5, resume_at):
            self.assertEqual(transport.producerState, "paused")
            self.waits.release(i)
        self.assertEqual(transport.producerState, "producing")
        for i in range(resume_at, MAX_QUEUED_REQUESTS + 5):
            self.waits.release(i)
        self.assertEqual([seq for seq, _ in self.replies(peer, transport)],
                         list(range(1, MAX_QUEUED_REQUESTS + 6)))

    def test_nothing_new_starts_while_the_client_does_not_read_its_replies(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "wait", "a"))
        protocol.pauseProducing()  # the transport's write buffer is full
        protocol.dataReceived(peer.invoke("servant", "wait", "b"))
        self.assertEqual(self.waits.started, ["a"])
        protocol.resumeProducing()
        self.assertEqual(self.waits.started, ["a", "b"])

    def test_hanging_up_answers_the_calls_before_it_then_closes(self) -> None:
        """A servant's ``client.close()``: the calls pipelined before it that still run are
        answered (a Pyro4 daemon, one request at a time, had answered them), then the
        connection closes; the closing call and what came after it get nothing."""
        protocol, transport, peer = self.connect()
        protocol.pauseProducing()  # (so that the last request stays queued)
        protocol.dataReceived(peer.invoke("servant", "wait", "before"))
        protocol.resumeProducing()
        protocol.dataReceived(peer.invoke("servant", "hang_up") + peer.invoke("servant", "add", 1, 1))
        self.assertIs(protocol.state, ConnectionState.CLOSING)
        self.assertFalse(transport.disconnecting)  # a reply is still owed
        self.assertEqual(transport.producerState, "paused")  # nothing more is read
        self.waits.release("before")
        self.assertEqual(self.replies(peer, transport), [(1, "before")])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.waits.started, ["before"])  # add never ran

    def test_hanging_up_drops_the_replies_of_calls_started_after_it(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "wait", "first")
                              + peer.invoke("servant", "release_and_wait", "first", "mine"))
        # "first" is answered; now a call that hangs up while a later one runs
        protocol.dataReceived(peer.invoke("servant", "wait", "a") + peer.invoke("servant", "wait", "b"))
        self.assertEqual(self.waits.started, ["first", "mine", "a", "b"])
        protocol._hang_up(3)  # as the servant of "a" (seq 3) does with client.close()
        self.waits.release("b")
        self.waits.release("mine")  # seq 2, before the closing call: answered
        self.waits.release("a")
        self.assertEqual([seq for seq, _ in self.replies(peer, transport)], [1, 2])
        self.assertTrue(transport.disconnecting)

    def test_pipelined_reads_of_an_async_stream_wait_for_each_other(self) -> None:
        """An async generator cannot run two ``anext()`` at once: reads of its item stream
        pipelined on one connection are served one after another (review finding)."""
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "ticks", 3))
        (opened,) = peer.replies(transport)
        stream_id = opened.annotations["STRM"].decode()
        protocol.dataReceived(b"".join(
            peer.invoke("Pyro.Daemon", "get_next_stream_item", stream_id) for _ in range(4)))
        for _ in range(3):
            self.clock.advance(1)
        replies = [peer.load(msg) for msg in peer.replies(transport)]
        self.assertEqual(replies[:3], [0, 1, 2])
        self.assertIsInstance(replies[3], StopIteration)

    def test_the_late_outcome_of_a_call_on_a_lost_connection_is_dropped(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "wait", "a") + peer.invoke("servant", "wait", "b"))
        protocol.connectionLost(None)
        self.waits.release("b")
        self.waits.release("a")
        self.assertEqual(peer.replies(transport), [])


class ThreadPoolTest(Fixture):
    """With a thread pool, a call that runs there holds its connection (Pyro4's thread
    server: one call per connection at a time); coroutine servants still do not."""

    def setUp(self) -> None:
        self.threadpool = ThreadlessPool()
        super().setUp()

    def test_pool_calls_of_one_connection_run_one_at_a_time(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "add", 1, 1) + peer.invoke("servant", "add", 2, 2))
        self.assertEqual(len(self.threadpool.jobs), 1)  # the second waits for the first
        self.threadpool.run_next()
        self.assertEqual(self.replies(peer, transport), [(1, 2)])
        self.assertEqual(len(self.threadpool.jobs), 1)
        self.threadpool.run_next()
        self.assertEqual(self.replies(peer, transport), [(2, 4)])

    def test_other_connections_are_not_held_up(self) -> None:
        one, _, peer_one = self.connect()
        two, _, peer_two = self.connect()
        one.dataReceived(peer_one.invoke("servant", "add", 1, 1))
        two.dataReceived(peer_two.invoke("servant", "add", 2, 2))
        self.assertEqual(len(self.threadpool.jobs), 2)

    def test_coroutine_servants_still_run_concurrently(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "wait", "a") + peer.invoke("servant", "wait", "b")
                              + peer.invoke("servant", "add", 1, 2))
        self.assertEqual((self.waits.started, len(self.threadpool.jobs)), (["a", "b"], 1))
        self.threadpool.run_next()  # add's reply still waits for a and b
        self.assertEqual(peer.replies(transport), [])
        self.waits.release("b")
        self.waits.release("a")
        self.assertEqual(self.replies(peer, transport), [(1, "a"), (2, "b"), (3, 3)])

    def test_a_batch_holds_the_connection(self) -> None:
        protocol, transport, peer = self.connect()
        batch = peer.invoke("servant", "<batch>", ("add", (1, 1), {}), ("add", (2, 2), {}),
                            flags=wire.FLAGS_BATCH)
        protocol.dataReceived(batch + peer.invoke("servant", "wait", "after"))
        self.threadpool.run_next()
        self.assertEqual(self.waits.started, [])  # the batch is not done yet
        self.threadpool.run_next()
        self.assertEqual(self.waits.started, ["after"])
        self.waits.release("after")
        self.assertEqual(self.replies(peer, transport), [(1, [2, 4]), (2, "after")])

    def test_reading_an_item_stream_holds_the_connection(self) -> None:
        protocol, transport, peer = self.connect()
        protocol.dataReceived(peer.invoke("servant", "count", 2))
        self.threadpool.run_next()
        (reply,) = peer.replies(transport)
        stream_id = reply.annotations["STRM"].decode()
        protocol.dataReceived(peer.invoke("Pyro.Daemon", "get_next_stream_item", stream_id)
                              + peer.invoke("servant", "wait", "after"))
        self.assertEqual(self.waits.started, [])  # next() of a plain generator: in the pool
        self.threadpool.run_next()
        self.assertEqual(self.waits.started, ["after"])
        self.waits.release("after")
        self.assertEqual(self.replies(peer, transport), [(2, 0), (3, "after")])


class OverARealSocketTest(unittest.TestCase):
    """The same over TCP: raw frames, since a ``Pyro4.Proxy`` never pipelines."""

    @defer.inlineCallbacks
    def test_pipelined_calls_overlap_and_their_replies_come_in_order(self) -> None:
        global WAITS
        WAITS = waits = Waits()
        factory = our_server.serve(self)
        factory.register(Servant(), "servant")
        peer = ScriptedPeer()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", factory.ports[0].getHost().port)
        raw = yield connectProtocol(endpoint, RawPeer(peer))
        self.addCleanup(lambda: raw.closed)
        self.addCleanup(raw.transport.loseConnection)
        (ok,) = yield raw.replies_after(peer.connect("servant"), 1)
        self.assertEqual(ok.type, wire.MSG_CONNECTOK)
        both_running = waits.when_running(2).addTimeout(10, reactor)
        replies = raw.replies_after(peer.invoke("servant", "wait", "first")
                                    + peer.invoke("servant", "wait", "second"), 2)
        yield both_running  # the second started while the first was still in progress
        waits.release("second")  # the later one finishes first...
        yield task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(raw.replies, [ok])  # ...and its reply waits for the first one's
        waits.release("first")
        first, second = yield replies
        self.assertEqual([(first.seq, peer.load(first)), (second.seq, peer.load(second))],
                         [(1, "first"), (2, "second")])
