"""The connection pool, deterministically: which connection each call goes on, and when.

The rule (:class:`pyro.client.pool.ConnectionPool`): an idle connection first; else a call
waits for a connection being opened (one per waiting call, up to ``max_connections``) rather
than queueing behind a busy one; only when every connection the pool may have is up and busy
(or it is backing off) are calls pipelined, on the least loaded. MemoryReactorClock and
StringTransport (:class:`~tests.client.test_unit.Peer`), no sockets, no sleeps.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from Pyro4 import errors
from Pyro4.core import URI as PyroURI
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase

from pyro import wire
from pyro.client import DeferredProxy, PyroClientProtocol
from pyro.client.endpoints import default_endpoint
from pyro.client.pool import ConnectionPool
from pyro.client.protocol import _Call

from .test_unit import META, SERPENT, URI, Peer


class PoolTestCase(TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def tearDown(self) -> None:
        self.assertEqual(self.reactor.getDelayedCalls(), [], "a timer was left behind")

    def proxy(self, **kwargs: Any) -> DeferredProxy:
        kwargs.setdefault("backoff", lambda attempt: 10.0 * attempt)
        return DeferredProxy(URI, reactor=self.reactor, **kwargs)

    def accept(self, index: int = -1) -> Peer:
        peer = Peer(self.reactor, index).accept()
        peer.connect_ok()
        return peer

    def close(self, proxy: DeferredProxy, peers: list[Peer], calls: list[Any] = ()) -> None:
        d = proxy.close()
        for peer in peers:
            if not peer.protocol._wrappedProtocol._lost:
                peer.lose()
        self.successResultOf(d)
        for call in calls:
            self.failureResultOf(call, errors.ConnectionClosedError)


class CallPlacementTests(PoolTestCase):
    def test_a_burst_waits_for_the_connections_being_opened(self) -> None:
        proxy = self.proxy()  # the defaults: 4 connections, 64 in flight (16 on each)
        calls = [proxy.add(i, 0) for i in range(50)]
        self.assertEqual(len(self.reactor.tcpClients), 1)  # none up yet: one attempt
        peers = [self.accept()]
        self.assertEqual(len(peers[0].received()), 1)  # not 16: three more are being opened
        self.assertEqual(len(self.reactor.tcpClients), 4)
        for index in (1, 2):
            peer = self.accept(index)
            (request,) = peer.received()  # one each, in the order the calls were made
            self.assertEqual(peer.call_of(request)[2], (index, 0))
            self.assertEqual(peers[0].received(), [])  # nothing pipelined meanwhile
            peers.append(peer)
        peers.append(self.accept(3))
        # every connection it may have is up and busy: now the rest are pipelined, evenly
        carried = [1, 1, 1, 0]
        for i, peer in enumerate(peers):
            carried[i] += len(peer.received())
        self.assertEqual(carried, [13, 13, 12, 12])
        self.assertEqual(len(self.reactor.tcpClients), 4)
        self.close(proxy, peers, calls)

    def test_an_idle_connection_is_used_before_a_new_one_is_opened(self) -> None:
        proxy = self.proxy()
        first = proxy.add(1, 1)
        peer = self.accept()
        (request,) = peer.received()
        peer.reply(request, 2)
        self.assertEqual(self.successResultOf(first), 2)
        calls = [proxy.add(2, 2)]
        self.assertEqual(len(peer.received()), 1)
        self.assertEqual(len(self.reactor.tcpClients), 1)  # the idle one took it
        calls.append(proxy.add(3, 3))  # now it is busy: a second connection for this one
        self.assertEqual((peer.received(), len(self.reactor.tcpClients)), ([], 2))
        second = self.accept()
        self.assertEqual(len(second.received()), 1)
        self.close(proxy, [peer, second], calls)

    def test_a_reply_frees_a_connection_for_a_call_waiting_for_a_new_one(self) -> None:
        proxy = self.proxy(max_connections=2)
        calls = [proxy.add(1, 1), proxy.add(2, 2)]
        peer = self.accept()
        (request,) = peer.received()
        peer.reply(request, 2)  # the second connection is still being opened
        (request,) = peer.received()  # the waiting call takes the idle one
        self.assertEqual(peer.call_of(request)[2], (2, 2))
        peer.reply(request, 4)
        self.assertEqual([self.successResultOf(d) for d in calls], [2, 4])
        late = self.accept()  # kept for the next calls
        self.assertEqual(late.received(), [])
        self.close(proxy, [peer, late])

    def test_calls_are_pipelined_while_the_pool_backs_off(self) -> None:
        proxy = self.proxy(max_connections=2)
        calls = [proxy.add(1, 1), proxy.add(2, 2)]
        peer = self.accept()
        self.assertEqual(len(peer.received()), 1)  # the second call waits for a connection
        Peer(self.reactor, -1).refuse()  # which cannot be made now
        (pipelined,) = peer.received()  # so it goes behind the first, not after the backoff
        self.assertEqual(peer.call_of(pipelined)[2], (2, 2))
        self.close(proxy, [peer], calls)

    def test_one_connection_pipelines_at_once(self) -> None:
        proxy = self.proxy(max_connections=1)
        calls = [proxy.add(i, 0) for i in range(5)]
        peer = self.accept()
        self.assertEqual([peer.call_of(m)[2] for m in peer.received()],
                         [(i, 0) for i in range(5)])
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.close(proxy, [peer], calls)

    def test_min_connections_take_a_burst_at_once(self) -> None:
        proxy = self.proxy(min_connections=4)
        self.successResultOf(_connect_all(self, proxy, 4))
        calls = [proxy.add(i, 0) for i in range(8)]
        self.assertEqual([len(peer.received()) for peer in self.peers], [2, 2, 2, 2])
        self.close(proxy, self.peers, calls)

    def test_a_stream_request_passes_a_call_waiting_for_a_new_connection(self) -> None:
        proxy = self.proxy()
        opened = proxy.count(3)
        peer = self.accept()
        (request,) = peer.received()
        peer.reply_stream(request, b"s")
        stream = self.successResultOf(opened)
        busy = proxy.add(0, 0)  # the idle connection
        waiting = proxy.add(1, 1)  # waits for a second connection
        item = stream.next()  # can only go on the stream's connection: it goes now
        sent = peer.received()
        self.assertEqual([peer.call_of(m)[1] for m in sent], ["add", "get_next_stream_item"])
        self.assertNoResult(waiting)
        second = self.accept()
        (request,) = second.received()
        self.assertEqual(second.call_of(request)[2], (1, 1))
        self.close(proxy, [peer, second], [busy, waiting, item])


class MetadataTests(PoolTestCase):
    def test_a_call_the_metadata_refuses_fails_at_once(self) -> None:
        proxy = self.proxy(max_connections=1, max_in_flight=1)
        busy = proxy.add(1, 1)
        peer = self.accept()
        queued = proxy.add(2, 2)  # waits for room
        self.failureResultOf(proxy.nope(), AttributeError)  # not after the queued one
        self.failureResultOf(proxy.getattr("nope"), AttributeError)
        self.close(proxy, [peer], [busy, queued])

    def test_queued_calls_are_checked_when_the_first_connection_brings_the_metadata(self) -> None:
        proxy = self.proxy()
        calls = [proxy.add(1, 1), proxy.add(2, 2)]
        missing, unknown = proxy.getattr("nope"), proxy.nope()
        peer = self.accept()
        self.failureResultOf(missing, AttributeError)  # though no connection is free for it
        self.failureResultOf(unknown, AttributeError)
        self.assertEqual(len(peer.received()), 1)
        self.close(proxy, [peer], calls)

    def test_oneway_methods_are_made_oneway_when_checked(self) -> None:
        proxy = self.proxy(max_connections=1)
        peer = self.accept_after(proxy.connect())
        fired = proxy.fire(1)  # META says "fire" is oneway: fires once written
        (request,) = peer.received()
        self.assertTrue(request.flags & wire.FLAGS_ONEWAY)
        self.assertIsNone(self.successResultOf(fired))
        self.close(proxy, [peer])

    def accept_after(self, bound: defer.Deferred[None]) -> Peer:
        peer = self.accept()
        self.successResultOf(bound)
        return peer


class _Owner:
    """The least a pool needs of its proxy (pyro.client.pool.PoolOwner)."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.accepted: list[PyroClientProtocol] = []

    def _resolve_uri(self) -> defer.Deferred[PyroURI]:
        raise AssertionError("a PYRO: URI needs no resolving")

    def _protocol_factory(self, uri: PyroURI) -> Any:
        return lambda: PyroClientProtocol(uri.object, SERPENT, location=uri.location,
                                          clock=self.reactor)

    async def _accept_connection(self, protocol: PyroClientProtocol, wait: float) -> None:
        self.accepted.append(protocol)

    def _connect_wait(self) -> float:
        return 5.0

    def _before_send(self, call: _Call, protocol: PyroClientProtocol) -> bool:
        call.prepare(SERPENT, protocol.object_id)
        return True

    def _annotate_pinned(self, call: _Call) -> None:
        pass


class PoolOnItsOwnTests(PoolTestCase):
    def pool(self, owner: _Owner, **kwargs: Any) -> ConnectionPool:
        return ConnectionPool(owner, PyroURI(URI), self.reactor, backoff=lambda n: 1.0,
                              endpoint_factory=default_endpoint, **kwargs)

    def test_a_pool_serves_any_owner(self) -> None:
        owner = _Owner(self.reactor)
        pool = self.pool(owner, max_connections=2)
        calls = [_Call(None, "add", (i, 0), {}) for i in range(3)]
        for call in calls:
            pool.submit(call)
        first = Peer(self.reactor, 0).accept()
        first.connect_ok(meta=META)
        second = Peer(self.reactor, 1).accept()
        second.connect_ok(meta=META)
        self.assertEqual(owner.accepted, [first.protocol._wrappedProtocol,
                                          second.protocol._wrappedProtocol])
        self.assertEqual((len(first.received()), len(second.received())), (2, 1))
        self.assertEqual(pool.in_flight, 3)
        d = pool.close(errors.ConnectionClosedError("done"))
        first.lose()
        second.lose()
        self.successResultOf(d)
        for call in calls:
            self.failureResultOf(call.deferred, errors.ConnectionClosedError)

    def test_a_pool_does_not_keep_its_owner_alive(self) -> None:
        owner = _Owner(self.reactor)
        pool = self.pool(owner)
        alive = weakref.ref(owner)
        del owner
        gc.collect()
        self.assertIsNone(alive())
        self.assertEqual(self.reactor.tcpClients, [])  # nothing is opened for nobody
        pool._maybe_open()
        self.assertEqual(self.reactor.tcpClients, [])


def _connect_all(test: PoolTestCase, proxy: DeferredProxy, count: int) -> defer.Deferred[None]:
    bound = proxy.connect()
    test.peers = [test.accept(0)]
    test.peers += [test.accept(index) for index in range(1, count)]
    return bound
