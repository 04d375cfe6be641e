"""``NS_AUTOCLEAN`` on the reactor (pyro.nameserver.autoclean), against Pyro4 4.82's rules.

The rounds run on a ``task.Clock`` and the probes are a recording double, so time is exact:
Pyro4's cleaner removes a name that has not accepted a connection for 20 seconds
(``max_unreachable_time``), never the name server itself, and refuses intervals below 3
seconds. Then the real probe: a TCP (and UNIX socket) connection, opened and closed at once,
against real loopback ports; a server that never answers, on a ``MemoryReactorClock``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import Pyro4
import Pyro4.naming
from Pyro4 import constants
from Pyro4.core import URI
from twisted.internet import defer, reactor, task
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import TestCase

from pyro.nameserver import AutoCleaner, register_name_server
from pyro.nameserver.autoclean import check_autoclean, connection_probe
from pyro.protocol import Pyro4ProtocolFactory

from ..support.asynctest import async_test, failure_of
from ..support.config import config_changed, patch_config
from ..support.pyro4_peers import free_port

ALIVE = "PYRO:alive@192.0.2.1:1111"
DEAD = "PYRO:dead@192.0.2.2:2222"
NS_URI = "PYRO:Pyro.NameServer@192.0.2.9:9090"


class RecordingProbe:
    """Answers for the URIs not in ``down``; records what it was asked, and when."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.down: set[str] = set()
        self.calls: list[tuple[float, str, float]] = []
        self.hold: dict[str, defer.Deferred[None]] = {}  # uri -> a probe left pending

    def __call__(self, uri: URI, timeout: float) -> defer.Deferred[None]:
        self.calls.append((self.clock.seconds(), str(uri), timeout))
        if str(uri) in self.hold:
            return self.hold[str(uri)]
        if str(uri) in self.down:
            return defer.fail(ConnectionRefusedError())
        return defer.succeed(None)

    def probed(self) -> set[str]:
        return {uri for _, uri, _ in self.calls}


class CleanerTestCase(TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.probe = RecordingProbe(self.clock)
        self.nameserver = Pyro4.naming.NameServer(Pyro4.naming.MemoryStorage())
        self.nameserver.register(constants.NAMESERVER_NAME, NS_URI)

    def cleaner(self, interval: float = 3, **kwargs: Any) -> AutoCleaner:
        cleaner = AutoCleaner(self.nameserver, interval, clock=self.clock, probe=self.probe,
                              **kwargs)
        cleaner.start()
        self.addCleanup(cleaner.stop)
        return cleaner

    def advance_to(self, seconds: float) -> None:
        while self.clock.seconds() < seconds:
            self.clock.advance(min(1, seconds - self.clock.seconds()))

    def names(self) -> set[str]:
        return set(self.nameserver.list())


class IntervalTests(TestCase):
    def test_below_three_seconds_is_refused_with_pyro4s_error(self) -> None:
        with config_changed(NS_AUTOCLEAN=2.5):
            with self.assertRaises(ValueError) as pyro4_error:
                Pyro4.naming.AutoCleaner(Pyro4.naming.NameServer())
        for interval in (0.1, 2.5, 2.999):
            with self.assertRaises(ValueError) as ours:
                check_autoclean(interval)
            self.assertEqual(str(ours.exception), str(pyro4_error.exception))
            self.assertRaises(ValueError, AutoCleaner, Pyro4.naming.NameServer(), interval)
        self.assertEqual(str(pyro4_error.exception), "NS_AUTOCLEAN cannot be smaller than 3")
        check_autoclean(3)
        check_autoclean(0)  # no cleaning at all: fine
        check_autoclean(-1)

    def test_pyro4s_override_for_unit_tests_is_honoured(self) -> None:
        self.patch(Pyro4.naming.AutoCleaner, "override_autoclean_min", True)
        check_autoclean(0.2)
        self.assertEqual(AutoCleaner(Pyro4.naming.NameServer(), 0.2).interval, 0.2)

    def test_register_name_server_reads_ns_autoclean_when_called(self) -> None:
        clock = MemoryReactorClock()
        factory = Pyro4ProtocolFactory(reactor=clock)
        factory.setAddress("127.0.0.1", 9090)
        patch_config(self, NS_AUTOCLEAN=0.0)  # Pyro4's default: none
        nameserver, _ = register_name_server(factory)
        self.assertIsNone(nameserver.cleaner)
        self.assertEqual(clock.getDelayedCalls(), [])
        Pyro4.config.NS_AUTOCLEAN = 7.0
        second = Pyro4ProtocolFactory(reactor=clock)
        second.setAddress("127.0.0.1", 9091)
        nameserver, _ = register_name_server(second)
        Pyro4.config.NS_AUTOCLEAN = 0.0  # read already
        self.assertTrue(nameserver.cleaner.running)
        self.assertEqual(nameserver.cleaner.interval, 7.0)
        self.assertEqual([call.getTime() for call in clock.getDelayedCalls()], [7.0])
        second.close()
        factory.close()

    def test_an_invalid_interval_registers_nothing(self) -> None:
        factory = Pyro4ProtocolFactory(reactor=MemoryReactorClock())
        factory.setAddress("127.0.0.1", 9090)
        patch_config(self, NS_AUTOCLEAN=1.0)
        self.assertRaises(ValueError, register_name_server, factory)
        self.assertRaises(ValueError, register_name_server, factory, autoclean=2)
        self.assertEqual(list(factory.objectsById), [constants.DAEMON_NAME])

    def test_explicit_autoclean_wins_over_the_config(self) -> None:
        clock = MemoryReactorClock()
        factory = Pyro4ProtocolFactory(reactor=clock)
        factory.setAddress("127.0.0.1", 9090)
        patch_config(self, NS_AUTOCLEAN=5.0)
        nameserver, _ = register_name_server(factory, autoclean=0)
        self.assertIsNone(nameserver.cleaner)
        other = Pyro4ProtocolFactory(reactor=clock)
        other.setAddress("127.0.0.1", 9091)
        nameserver, _ = register_name_server(other, autoclean=4)
        self.assertEqual(nameserver.cleaner.interval, 4)
        other.close()


class RemovalTests(CleanerTestCase):
    def test_a_dead_registration_goes_after_twenty_seconds_the_rest_stays(self) -> None:
        self.nameserver.register("alive", ALIVE)
        self.nameserver.register("dead", DEAD, metadata={"some", "tags"})
        self.probe.down = {DEAD, NS_URI}  # the name server's own entry is never checked
        cleaner = self.cleaner(3)
        self.clock.advance(2.9)
        self.assertEqual(self.probe.calls, [])  # no round before the interval
        self.clock.advance(0.1)  # t=3: the first round; dead since 3
        self.assertEqual(self.probe.probed(), {ALIVE, DEAD})
        self.assertEqual(cleaner.unreachable, {"dead": (DEAD, 3.0)})
        self.advance_to(21)  # 18 s unreachable
        self.assertIn("dead", self.names())
        self.advance_to(23.9)
        self.assertIn("dead", self.names())
        self.advance_to(24)  # the round at 24: 21 s >= 20
        self.assertEqual(self.names(), {constants.NAMESERVER_NAME, "alive"})
        self.assertEqual((cleaner.removed, cleaner.unreachable), (1, {}))
        self.assertEqual({time for time, _, _ in self.probe.calls},
                         {float(t) for t in range(3, 25, 3)})  # a round every 3 s
        self.assertNotIn(NS_URI, self.probe.probed())

    def test_the_name_server_and_the_daemon_are_never_checked(self) -> None:
        self.nameserver.register(constants.DAEMON_NAME, "PYRO:Pyro.Daemon@192.0.2.9:9090")
        self.probe.down = {NS_URI, "PYRO:Pyro.Daemon@192.0.2.9:9090"}
        self.cleaner(3)
        self.advance_to(60)
        self.assertEqual(self.probe.calls, [])
        self.assertEqual(self.names(), {constants.NAMESERVER_NAME, constants.DAEMON_NAME})

    def test_an_answer_clears_the_mark(self) -> None:
        self.nameserver.register("flaky", DEAD)
        self.probe.down = {DEAD}
        cleaner = self.cleaner(3)
        self.advance_to(12)  # unreachable since 3
        self.probe.down = set()
        self.advance_to(15)  # answered at 15
        self.assertEqual(cleaner.unreachable, {})
        self.probe.down = {DEAD}
        self.advance_to(18)  # unreachable since 18: 20 s more from here
        self.advance_to(36)
        self.assertIn("flaky", self.names())
        self.advance_to(39)
        self.assertNotIn("flaky", self.names())

    def test_a_name_registered_anew_starts_over(self) -> None:
        moved = "PYRO:dead@192.0.2.3:3333"
        self.nameserver.register("server", DEAD)
        self.probe.down = {DEAD, moved}
        cleaner = self.cleaner(3)
        self.advance_to(15)  # DEAD unreachable since 3
        self.nameserver.register("server", moved)  # restarted elsewhere (and down again)
        self.advance_to(18)
        self.assertEqual(cleaner.unreachable, {"server": (moved, 18.0)})
        self.advance_to(36)
        self.assertIn("server", self.names())
        self.advance_to(39)
        self.assertNotIn("server", self.names())

    def test_a_name_that_went_away_loses_its_mark(self) -> None:
        """Pyro4 keeps it: the name registered again later, and down, would go at its first
        failed check."""
        self.nameserver.register("server", DEAD)
        self.probe.down = {DEAD}
        cleaner = self.cleaner(3)
        self.advance_to(15)
        self.nameserver.remove("server")
        self.advance_to(18)
        self.assertEqual(cleaner.unreachable, {})
        self.nameserver.register("server", DEAD)
        self.advance_to(21)
        self.assertEqual(cleaner.unreachable, {"server": (DEAD, 21.0)})

    def test_registered_anew_while_its_probe_runs_it_is_not_removed(self) -> None:
        self.nameserver.register("server", DEAD)
        self.probe.hold[DEAD] = pending = defer.Deferred()
        self.cleaner(3, max_unreachable_time=0)
        self.clock.advance(3)  # the probe is out
        self.nameserver.register("server", ALIVE)  # meanwhile, the server came back elsewhere
        pending.errback(ConnectionRefusedError())
        self.assertEqual(str(self.nameserver.lookup("server")), ALIVE)

    def test_max_unreachable_time_is_read_from_pyro4_every_round(self) -> None:
        self.patch(Pyro4.naming.AutoCleaner, "max_unreachable_time", 5)
        self.nameserver.register("dead", DEAD)
        self.probe.down = {DEAD}
        self.cleaner(3)
        self.advance_to(6)  # since 3, 3 s
        self.assertIn("dead", self.names())
        self.advance_to(9)  # 6 s >= 5
        self.assertNotIn("dead", self.names())

    def test_the_probe_timeout_is_commtimeout_or_5(self) -> None:
        self.nameserver.register("alive", ALIVE)
        patch_config(self, COMMTIMEOUT=0.0)
        self.cleaner(3)
        self.clock.advance(3)
        Pyro4.config.COMMTIMEOUT = 1.5
        self.clock.advance(3)
        self.assertEqual([timeout for _, _, timeout in self.probe.calls], [5, 1.5])

    def test_uris_pyro4s_thread_dies_on_are_probed_or_skipped(self) -> None:
        unix = "PYRO:obj@./u:/tmp/nothing-here.sock"
        self.nameserver.register("unix", unix)
        self.nameserver.register("alias", "PYRONAME:some.name")
        self.nameserver.register("meta", "PYROMETA:a.tag")
        self.nameserver.register("located", "PYRONAME:some.name@192.0.2.4:9090")
        self.nameserver.register("dead", DEAD)
        self.probe.down = {DEAD, unix}
        self.cleaner(3)
        self.advance_to(24)
        self.assertEqual(self.probe.probed(), {unix, DEAD, "PYRONAME:some.name@192.0.2.4:9090"})
        self.assertEqual(self.names(), {constants.NAMESERVER_NAME, "alias", "meta", "located"})

    def test_metadata_plays_no_part(self) -> None:
        self.nameserver.register("tagged", DEAD, metadata={"class:Pyro4.naming.NameServer"})
        self.probe.down = {DEAD}
        self.cleaner(3)
        self.advance_to(24)
        self.assertNotIn("tagged", self.names())

    def test_it_logs_as_pyro4_does(self) -> None:
        self.nameserver.register("dead", DEAD)
        self.nameserver.register("alive", ALIVE)
        self.probe.down = {DEAD}
        self.cleaner(3)
        with capturedLogs() as events:
            self.advance_to(24)
        infos = [formatEvent(e) for e in events if e["log_level"] == LogLevel.info]
        self.assertEqual(infos, ["autoclean: unregistering dead; cannot connect uri %s for 21 "
                                 "sec" % DEAD])
        debugs = [formatEvent(e) for e in events if e["log_level"] == LogLevel.debug]
        self.assertIn("autoclean: 1/3 names currently unreachable", debugs)
        self.assertEqual({e["log_namespace"] for e in events}, {"pyro.nameserver"})


class RoundTests(CleanerTestCase):
    def test_a_slow_round_delays_the_next_and_clean_joins_it(self) -> None:
        self.nameserver.register("slow", DEAD)
        self.probe.hold[DEAD] = pending = defer.Deferred()
        cleaner = self.cleaner(3)
        self.clock.advance(3)
        joined = cleaner.clean()
        self.advance_to(10)  # rounds due at 6 and 9: the first is still running
        self.assertEqual(len(self.probe.calls), 1)
        self.assertNoResult(joined)
        del self.probe.hold[DEAD]
        pending.callback(None)
        self.successResultOf(joined)
        self.assertEqual(cleaner.rounds, 1)
        self.advance_to(12)
        self.assertEqual(len(self.probe.calls), 2)

    def test_stop_cancels_the_probes_of_the_round_in_progress(self) -> None:
        self.nameserver.register("slow", DEAD)
        cancelled: list[bool] = []
        self.probe.hold[DEAD] = defer.Deferred(lambda d: cancelled.append(True))
        cleaner = self.cleaner(3)
        self.clock.advance(3)
        cleaner.stop()
        self.assertEqual((cancelled, cleaner.running), ([True], False))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_storage_error_is_logged_and_the_next_round_runs(self) -> None:
        cleaner = self.cleaner(3)
        original = self.nameserver.list
        self.nameserver.list = lambda: 1 / 0
        with capturedLogs() as events:
            self.clock.advance(3)
        self.assertTrue(any(e.get("log_failure") is not None
                            and e["log_failure"].check(ZeroDivisionError) for e in events))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.nameserver.list = original
        self.nameserver.register("dead", DEAD)
        self.clock.advance(3)
        self.assertEqual((cleaner.running, cleaner.rounds), (True, 1))


class FactoryCloseTests(TestCase):
    def test_closing_the_factory_stops_the_cleaner_then_closes_the_storage(self) -> None:
        clock = MemoryReactorClock()
        events: list[str] = []

        class Storage(Pyro4.naming.MemoryStorage):
            def close(self) -> None:
                events.append("storage closed, cleaner running: %s" % cleaner.running)

        factory = Pyro4ProtocolFactory(reactor=clock)
        factory.setAddress("127.0.0.1", 9090)
        nameserver, _ = register_name_server(factory, Storage(), autoclean=3)
        cleaner = nameserver.cleaner
        self.assertTrue(cleaner.running)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        self.successResultOf(factory.close())
        self.assertEqual(events, ["storage closed, cleaner running: False"])
        self.assertEqual(clock.getDelayedCalls(), [])
        self.successResultOf(factory.close())  # once only
        self.assertEqual(len(events), 1)


class ConnectionProbeTests(TestCase):
    """The real probe, on loopback: accepted means answering."""

    @async_test
    async def test_a_listening_port_answers_and_is_hung_up_on(self) -> None:
        lost: defer.Deferred[None] = defer.Deferred()

        class Server(Protocol):
            def connectionLost(self, reason: Any = None) -> None:
                lost.callback(None)

        port = reactor.listenTCP(0, Factory.forProtocol(Server), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        uri = URI("PYRO:thing@127.0.0.1:%d" % port.getHost().port)
        self.assertIsNone(await connection_probe(uri, 5))
        await lost  # the probe closed its connection

    @async_test
    async def test_a_closed_port_does_not(self) -> None:
        uri = URI("PYRO:thing@127.0.0.1:%d" % free_port())
        error = await failure_of(connection_probe(uri, 5))
        self.assertIsInstance(error, ConnectionRefusedError)

    @async_test
    async def test_a_unix_socket(self) -> None:
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        path = os.path.join(directory, "server.sock")
        uri = URI("PYRO:thing@./u:" + path)
        self.assertIsInstance(await failure_of(connection_probe(uri, 5)), Exception)
        port = reactor.listenUNIX(path, Factory.forProtocol(Protocol))
        self.addCleanup(port.stopListening)
        self.assertIsNone(await connection_probe(uri, 5))

    def test_a_server_that_never_answers_times_out(self) -> None:
        clock = MemoryReactorClock()
        d = connection_probe(URI("PYRO:thing@192.0.2.1:9999"), 2, reactor=clock)
        self.assertEqual(len(clock.tcpClients), 1)
        clock.advance(1.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.failureResultOf(d)  # (the connection attempt was cancelled)
        self.assertEqual(clock.getDelayedCalls(), [])
