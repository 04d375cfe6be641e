"""``KeptRegistration.stop()`` at every moment of a check, with the native client.

``stop()`` cancels the keeper's loop wherever it waits: finding the name server
(``locate_ns``: the TCP connection, the handshake), the ``lookup``, the ``register``, or
``ns.close()`` closing the connection afterwards. Each of those moments must end the loop
with its cancellation consumed (nothing logged as an unhandled error, not even when the
abandoned Deferreds are garbage collected: a server's SIGTERM shutdown printed "Unhandled
error in Deferred ... CancelledError" once), and the name must still be removed.

The name server is played by :class:`MemoryNameServer`: the real :func:`pyro.client.locate_ns`
and :class:`~pyro.client.DeferredProxy` connect through a ``MemoryReactorClock``, and the
server end answers ``lookup``/``register``/``remove`` from a dict, each stage of it held on
demand so that ``stop()`` can come exactly there. No sockets, no sleeps.
"""

from __future__ import annotations

import gc
from typing import Any

from Pyro4 import errors
from Pyro4.core import URI
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from pyro import wire
from pyro.client import locate_ns
from pyro.nameserver import KeptRegistration

from ..client.test_unit import Peer

OURS = "PYRO:thing@192.0.2.1:1111"
NS_URI = "PYRO:Pyro.NameServer@127.0.0.1:9090"
NS_META = {"methods": ["lookup", "register", "remove", "list", "ping"], "oneway": [],
           "attrs": []}
STAGES = ("connect", "handshake", "lookup", "register", "close")


class MemoryNameServer:
    """The server end of every connection made through ``reactor``: a name server.

    :meth:`pump` accepts connections, answers handshakes and calls, and completes the
    closes the client starts, until nothing moves; while ``hold`` names a stage (one of
    :data:`STAGES`), that stage is left waiting instead (``held`` says it was reached).
    """

    def __init__(self, reactor: MemoryReactorClock) -> None:
        self.reactor = reactor
        self.names: dict[str, str] = {}
        self.peers: list[Peer] = []
        self.lost: set[int] = set()
        self.pending: dict[int, list[wire.Message]] = {}
        self.hold: str | None = None
        self.held = False
        self.calls: list[str] = []

    def _holding(self, stage: str) -> bool:
        if self.hold == stage:
            self.held = True
            return True
        return False

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            while len(self.peers) < len(self.reactor.tcpClients) and not self._holding("connect"):
                index = len(self.peers)
                peer = Peer(self.reactor, index)
                self.pending[index] = []
                self.peers.append(peer)
                if peer.connector.stoppedConnecting:  # the attempt was cancelled meanwhile
                    self.lost.add(index)
                    continue
                peer.accept()
                moved = True
            for index, peer in enumerate(self.peers):
                if index in self.lost:
                    continue
                self.pending[index].extend(peer.received())
                waiting, self.pending[index] = self.pending[index], []
                for msg in waiting:
                    if not self._answer(peer, msg):
                        self.pending[index].append(msg)
                    else:
                        moved = True
                assert peer.transport is not None
                if peer.transport.disconnecting and not self._holding("close"):
                    self.lost.add(index)
                    peer.lose()
                    moved = True

    def _answer(self, peer: Peer, msg: wire.Message) -> bool:
        if msg.type == wire.MSG_CONNECT:
            if self._holding("handshake"):
                return False
            peer.send(wire.MSG_CONNECTOK, {"handshake": "hello", "meta": NS_META}, msg.seq,
                      wire.FLAGS_META_ON_CONNECT)
            return True
        _, method, args, _ = peer.call_of(msg)
        if self._holding(method):
            return False
        self.calls.append(method)
        name = args[0]
        if method == "lookup":
            if name in self.names:
                peer.reply(msg, URI(self.names[name]))
            else:
                peer.reply(msg, errors.NamingError("unknown name: " + name),
                           wire.FLAGS_EXCEPTION)
        elif method == "register":
            self.names[name] = str(args[1])
            peer.reply(msg, None)
        elif method == "remove":
            peer.reply(msg, 1 if self.names.pop(name, None) is not None else 0)
        else:
            raise AssertionError("unexpected call " + method)
        return True

    @property
    def open_connections(self) -> int:
        return len(self.peers) - len(self.lost)


class StopMidCheckTests(TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.ns = MemoryNameServer(self.reactor)
        self.failures: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_failure") is not None:
                self.failures.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def keep(self) -> KeptRegistration:
        def locate() -> defer.Deferred[Any]:
            return locate_ns(ns_uri=NS_URI, reactor=self.reactor, timeout=5.0)

        kept = KeptRegistration("thing", OURS, locate, self.reactor, interval=10)
        kept.start()
        return kept

    def assert_nothing_unhandled(self) -> None:
        gc.collect()  # an abandoned Deferred holding a Failure logs it when collected
        self.assertEqual(
            [event["log_failure"].getTraceback() for event in self.failures], [])

    def stop_at(self, stage: str, *, registered_before: bool) -> None:
        kept = self.keep()
        if registered_before:  # the first check registered it; the next one finds it lost
            self.ns.pump()
            self.successResultOf(kept.when_registered())
            self.assertEqual(self.ns.names, {"thing": OURS})
            del self.ns.names["thing"]
        self.ns.hold = stage
        self.reactor.advance(10 if registered_before else 0)
        self.ns.pump()
        self.assertTrue(self.ns.held, "the check never reached " + stage)
        stopped = kept.stop()
        self.ns.hold = None
        self.ns.pump()
        self.successResultOf(stopped)
        self.assertEqual(self.ns.names, {})  # removed (or never registered)
        self.assertEqual(self.ns.open_connections, 0)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assert_nothing_unhandled()

    def test_stop_while_sleeping(self) -> None:
        kept = self.keep()
        self.ns.pump()
        self.successResultOf(kept.when_registered())
        stopped = kept.stop()
        self.ns.pump()
        self.successResultOf(stopped)
        self.assertEqual(self.ns.names, {})
        self.assertEqual(self.ns.calls, ["lookup", "register", "lookup", "remove"])
        self.assert_nothing_unhandled()


def _add_stage_tests() -> None:
    for stage in STAGES:
        for again in (False, True):
            def test(self: StopMidCheckTests, stage: str = stage, again: bool = again) -> None:
                self.stop_at(stage, registered_before=again)

            name = "test_stop_during_%s_of_the_%s_check" % (stage, "next" if again else "first")
            test.__name__ = name
            setattr(StopMidCheckTests, name, test)


_add_stage_tests()
