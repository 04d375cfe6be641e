"""Calls issued together run concurrently: a default DeferredProxy against real servers.

The facts checked are orderings and counts (how many servant calls were in progress at once,
how many calls each connection carried), never wall times. The servants make them exact: they
hold every call until as many as the test expects are in progress (or give up after a while,
so that a test that fails does not hang), then let all of them go.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import Pyro4
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from pyro.client import DeferredProxy

from ..support import our_server, pyro4_peers
from ..support.asynctest import async_test

GIVE_UP = 10.0  # seconds a gate waits for the calls it expects before it lets them go


@Pyro4.expose
class AsyncGate:
    """For our server: ``enter`` is a coroutine that waits until ``expected`` calls are in."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.running = 0
        self.peak = 0
        self.opened = False
        self.order: list[int] = []
        self.per_connection: collections.Counter[int] = collections.Counter()
        self._waiting: list[defer.Deferred[None]] = []
        self._timer: Any = None

    async def enter(self, i: int) -> int:
        self.per_connection[id(Pyro4.current_context.client)] += 1
        self.order.append(i)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if not self.opened:
                if self.running >= self.expected:
                    self.open()
                else:
                    if self._timer is None:
                        self._timer = reactor.callLater(GIVE_UP, self.open)
                    d: defer.Deferred[None] = defer.Deferred()
                    self._waiting.append(d)
                    await d
            return i
        finally:
            self.running -= 1

    def open(self) -> None:
        self.opened = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)


@Pyro4.expose
@Pyro4.behavior(instance_mode="session")
class SessionGate:
    """One instance per connection; counts its calls in progress at once (class-wide)."""

    running = 0
    peak = 0

    async def enter(self, i: int) -> int:
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        try:
            await defer.succeed(None)  # (a real await: other calls could run meanwhile)
            from twisted.internet import task

            await task.deferLater(reactor, 0.001, lambda: None)
            return i
        finally:
            cls.running -= 1


@Pyro4.expose
class ThreadGate:
    """For Pyro4's thread daemon: ``enter`` blocks its worker thread until ``expected``
    calls are in."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.lock = threading.Lock()
        self.event = threading.Event()
        self.running = 0
        self.peak = 0
        self.per_connection: collections.Counter[int] = collections.Counter()

    def enter(self, i: int) -> int:
        with self.lock:
            self.per_connection[id(Pyro4.current_context.client)] += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
            if self.running >= self.expected:
                self.event.set()
        self.event.wait(GIVE_UP)
        with self.lock:
            self.running -= 1
        return i


class OurServerTests(TestCase):
    def proxy(self, uri: Any, **kwargs: Any) -> DeferredProxy:
        proxy = DeferredProxy(uri, **kwargs)
        self.addCleanup(proxy.close)
        return proxy

    @async_test
    async def test_a_burst_on_a_default_proxy_runs_all_at_once(self) -> None:
        factory = our_server.serve(self)
        gate = AsyncGate(50)
        proxy = self.proxy(factory.register(gate))  # defaults: up to 4 connections
        results = await defer.gatherResults([proxy.enter(i) for i in range(50)])
        self.assertEqual(results, list(range(50)))
        self.assertEqual(gate.peak, 50)  # every call in progress at once: one servant delay
        self.assertEqual(sorted(gate.per_connection.values()), [12, 12, 13, 13])
        self.assertEqual(len(factory.protocols), 4)

    @async_test
    async def test_one_connection_starts_calls_in_order_and_runs_them_concurrently(self) -> None:
        factory = our_server.serve(self)
        gate = AsyncGate(10)
        proxy = self.proxy(factory.register(gate), max_connections=1)
        answered: list[int] = []
        calls = [proxy.enter(i).addCallback(answered.append) for i in range(10)]
        await defer.gatherResults(calls)
        self.assertEqual(gate.order, list(range(10)))  # started in the order issued
        self.assertEqual(gate.peak, 10)  # all pipelined on one connection, run at once
        self.assertEqual(answered, list(range(10)))  # replies in order
        self.assertEqual(len(factory.protocols), 1)

    @async_test
    async def test_a_session_servant_sees_one_call_at_a_time(self) -> None:
        factory = our_server.serve(self)
        SessionGate.running = SessionGate.peak = 0
        proxy = self.proxy(factory.register(SessionGate), max_connections=1)
        results = await defer.gatherResults([proxy.enter(i) for i in range(10)])
        self.assertEqual(results, list(range(10)))
        self.assertEqual(SessionGate.peak, 1)  # pipelined, yet served one after another


class Pyro4DaemonTests(TestCase):
    def proxy(self, uri: Any, **kwargs: Any) -> DeferredProxy:
        proxy = DeferredProxy(uri, **kwargs)
        self.addCleanup(proxy.close)
        return proxy

    @async_test
    async def test_a_burst_is_spread_evenly_over_a_thread_daemons_connections(self) -> None:
        gate = ThreadGate(4)  # the thread daemon runs one call per connection at a time
        peer = pyro4_peers.serve_pyro4(self, "thread", gate)
        proxy = self.proxy(peer.uris[0])
        results = await defer.gatherResults([proxy.enter(i) for i in range(12)])
        self.assertEqual(results, list(range(12)))
        self.assertEqual(gate.peak, 4)  # one on each connection, none stacked behind another
        self.assertEqual(sorted(gate.per_connection.values()), [3, 3, 3, 3])

    @async_test
    async def test_a_burst_on_a_multiplex_daemon(self) -> None:
        gate = ThreadGate(1)  # one call at a time, whatever the connections
        peer = pyro4_peers.serve_pyro4(self, "multiplex", gate)
        proxy = self.proxy(peer.uris[0])
        results = await defer.gatherResults([proxy.enter(i) for i in range(12)])
        self.assertEqual(results, list(range(12)))
        self.assertEqual(gate.peak, 1)
        self.assertLessEqual(len(gate.per_connection), 4)
