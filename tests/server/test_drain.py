"""Graceful shutdown (``factory.drain``) and the factory's own thread pool (``threads=N``).

Driven with a ``task.Clock`` and ``StringTransport`` connections: nothing sleeps. A
``StringTransport`` only records ``loseConnection``; the tests then deliver
``connectionLost`` themselves, as the reactor would.
"""

from __future__ import annotations

import threading
from typing import Any

import Pyro4
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from pyro import wire
from pyro.protocol import Pyro4ProtocolFactory

from ..support import our_server
from ..support.asynctest import async_test
from ..support.scripted_peer import ScriptedPeer


@Pyro4.expose
class Servant:
    def __init__(self) -> None:
        self.pending: list[defer.Deferred[Any]] = []

    def add(self, a: int, b: int) -> int:
        return a + b

    def later(self) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append(d)
        return d

    def thread_name(self) -> str:
        return threading.current_thread().name


class FakePort:
    def __init__(self) -> None:
        self.stopped = 0

    def stopListening(self) -> None:
        self.stopped += 1


class DrainTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.factory = Pyro4ProtocolFactory(reactor=self.clock)
        self.factory.setAddress("127.0.0.1", 9999)
        self.port = FakePort()
        self.factory.ports.append(self.port)
        self.servant = Servant()
        self.factory.register(self.servant, "servant")

    def connect(self) -> tuple[Any, StringTransport, ScriptedPeer]:
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000),
                                    hostAddress=IPv4Address("TCP", "127.0.0.1", 9999))
        protocol.makeConnection(transport)
        peer = ScriptedPeer()
        protocol.dataReceived(peer.connect("servant"))
        (reply,) = peer.replies(transport)
        self.assertEqual(reply.type, wire.MSG_CONNECTOK)
        return protocol, transport, peer

    def lose_closed(self, *connections: tuple[Any, StringTransport, ScriptedPeer]) -> None:
        """Deliver connectionLost to the connections the server hung up on."""
        for protocol, transport, _ in connections:
            if transport.disconnecting and not protocol.closed:
                protocol.connectionLost(None)

    def test_stops_listening_and_closes_idle_connections_at_once(self) -> None:
        idle = self.connect()
        drained = self.factory.drain(10)
        self.assertEqual((self.port.stopped, self.factory.ports), (1, []))
        self.assertTrue(idle[1].disconnecting)
        self.assertNoResult(drained)  # until the connection is really gone
        self.lose_closed(idle)
        self.assertIsNone(self.successResultOf(drained))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_call_in_progress_is_answered_before_its_connection_closes(self) -> None:
        protocol, transport, peer = busy = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later"))
        idle = self.connect()
        drained = self.factory.drain(10)
        self.lose_closed(idle)
        self.clock.advance(5)
        self.assertFalse(transport.disconnecting)  # still waiting for its reply
        self.assertNoResult(drained)
        self.servant.pending[0].callback("done")
        (reply,) = peer.replies(transport)
        self.assertEqual(peer.load(reply), "done")
        self.clock.advance(self.factory.drain_interval)
        self.assertTrue(transport.disconnecting)
        self.lose_closed(busy)
        self.assertIsNone(self.successResultOf(drained))

    def test_when_time_is_up_busy_connections_are_closed_anyway(self) -> None:
        protocol, transport, peer = busy = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later"))
        with capturedLogs() as events:
            drained = self.factory.drain(2)
            self.clock.advance(1.9)
            self.assertFalse(transport.disconnecting)
            self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(peer.replies(transport), [])  # the call never answered
        self.lose_closed(busy)
        self.assertIsNone(self.successResultOf(drained))
        self.assertEqual(
            [(e["log_level"], e["log_format"].format(**e)) for e in events],
            [(LogLevel.info, "draining: waiting for 1 connection(s) with calls in progress "
                             "(up to 2 s)"),
             (LogLevel.warn, "draining: time is up; closing 1 connection(s) with calls in "
                             "progress")])

    def test_without_a_timeout_it_waits_as_long_as_it_takes(self) -> None:
        protocol, transport, peer = busy = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later"))
        drained = self.factory.drain(None)
        self.clock.advance(3600)
        self.assertFalse(transport.disconnecting)
        self.servant.pending[0].callback(1)
        self.clock.advance(self.factory.drain_interval)
        self.lose_closed(busy)
        self.assertIsNone(self.successResultOf(drained))

    def test_draining_twice_ends_together(self) -> None:
        protocol, transport, peer = busy = self.connect()
        protocol.dataReceived(peer.invoke("servant", "later"))
        first = self.factory.drain(10)
        second = self.factory.drain(10)
        self.assertEqual(self.port.stopped, 1)
        self.servant.pending[0].callback(1)
        self.clock.advance(self.factory.drain_interval)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.lose_closed(busy)
        self.assertEqual((self.successResultOf(first), self.successResultOf(second)),
                         (None, None))

    def test_a_factory_with_nothing_open_drains_at_once(self) -> None:
        self.assertIsNone(self.successResultOf(self.factory.drain(10)))
        self.assertEqual(self.port.stopped, 1)
        # and it can be drained again later
        self.assertIsNone(self.successResultOf(self.factory.drain(10)))


class OwnThreadPoolTests(unittest.TestCase):
    def test_threads_and_threadpool_exclude_each_other(self) -> None:
        pool = ThreadPool()
        with self.assertRaises(ValueError) as raised:
            Pyro4ProtocolFactory(threadpool=pool, threads=4)
        self.assertEqual(str(raised.exception),
                         "threads must be a positive number of threads, and not given "
                         "together with threadpool; not 4")
        with self.assertRaises(ValueError):
            Pyro4ProtocolFactory(threads=0)

    def test_started_when_listening_and_stopped_by_close(self) -> None:
        factory = Pyro4ProtocolFactory(reactor=task.Clock(), threads=3)
        self.assertIsNone(factory.threadpool)
        factory.doStart()  # what the first listening port does
        pool = factory.threadpool
        self.assertIsInstance(pool, ThreadPool)
        self.assertEqual((pool.started, pool.max), (True, 3))
        self.assertIsNone(self.successResultOf(factory.close()))
        self.assertIsNone(factory.threadpool)
        factory._pool_stopper.join(10)  # (stopping joins the threads: not in the reactor)
        self.assertTrue(pool.joined)
        factory.doStop()

    def test_a_user_pool_is_left_alone(self) -> None:
        pool = ThreadPool(minthreads=0, maxthreads=1)
        pool.start()
        self.addCleanup(pool.stop)
        factory = Pyro4ProtocolFactory(reactor=task.Clock(), threadpool=pool)
        factory.doStart()
        self.successResultOf(factory.close())
        self.assertEqual((factory.threadpool, pool.joined), (pool, False))
        factory.doStop()

    @async_test
    async def test_blocking_servants_run_in_the_pool(self) -> None:
        factory = our_server.serve(self, threads=2)
        uri = factory.register(Servant())
        name = await our_server.call(uri, "thread_name")
        self.assertEqual(name, "PoolThread-pyro.protocol servants-0")
