"""``keep_registered``'s loop (pyro.nameserver.registration) on a ``task.Clock``.

The name server is a real ``Pyro4.naming.NameServer`` behind a double of the proxy
``locate_ns`` would give (same method names, Deferred results); it can be taken down
(locating it fails, as ``locate_ns`` fails) and brought back empty, as a restarted name server
with in-memory storage is. The real thing, restarted on its port, is in
tests/nameserver/test_restart.py.
"""

from __future__ import annotations

from typing import Any

import Pyro4.naming
from Pyro4 import errors
from Pyro4.core import URI
from twisted.internet import defer, task
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import TestCase

from pyro.nameserver import KeptRegistration

OURS = "PYRO:thing@192.0.2.1:1111"
OTHER = "PYRO:thing@192.0.2.2:2222"
NS_URI = URI("PYRO:Pyro.NameServer@192.0.2.9:9090")


class FakeNameServerProxy:
    """What ``locate_ns`` fires with: the name server's methods, answered later (Deferreds)."""

    def __init__(self, server: NameServerDouble) -> None:
        self.server = server
        self.uri = server.uri
        self.closed = False

    def _call(self, method: str, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        self.server.calls.append((self.server.clock.seconds(), method, args, kwargs))
        if method in self.server.hold:
            return self.server.hold[method]
        return defer.maybeDeferred(getattr(self.server.nameserver, method), *args, **kwargs)

    def lookup(self, name: str) -> defer.Deferred[Any]:
        return self._call("lookup", name)

    def register(self, name: str, uri: Any, safe: bool = False,
                 metadata: Any = None) -> defer.Deferred[Any]:
        return self._call("register", name, uri, safe=safe, metadata=metadata)

    def remove(self, name: str) -> defer.Deferred[Any]:
        return self._call("remove", name)

    def close(self) -> defer.Deferred[None]:
        self.closed = True
        return defer.succeed(None)


class NameServerDouble:
    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.uri = NS_URI
        self.nameserver = Pyro4.naming.NameServer()
        self.up = True
        self.calls: list[tuple[float, str, tuple[Any, ...], dict[str, Any]]] = []
        self.located: list[float] = []
        self.proxies: list[FakeNameServerProxy] = []
        self.hold: dict[str, defer.Deferred[Any]] = {}

    def locate(self) -> defer.Deferred[Any]:
        self.located.append(self.clock.seconds())
        if not self.up:
            return defer.fail(errors.NamingError("Failed to locate the nameserver"))
        proxy = FakeNameServerProxy(self)
        self.proxies.append(proxy)
        return defer.succeed(proxy)

    def restart_empty(self) -> None:
        self.nameserver = Pyro4.naming.NameServer()
        self.up = True

    def methods(self) -> list[str]:
        return [method for _, method, _, _ in self.calls]

    def registered(self, name: str = "thing") -> str | None:
        try:
            return str(self.nameserver.lookup(name))
        except errors.NamingError:
            return None


class KeptTestCase(TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.ns = NameServerDouble(self.clock)

    def keep(self, uri: str = OURS, **kwargs: Any) -> KeptRegistration:
        kwargs.setdefault("interval", 10)
        kept = KeptRegistration("thing", uri, self.ns.locate, self.clock, **kwargs)
        kept.start()
        self.addCleanup(lambda: kept.stop() and None)
        return kept


class RegisteringTests(KeptTestCase):
    def test_it_registers_at_once_with_its_metadata(self) -> None:
        kept = self.keep(metadata=["a", "b", "a"])
        self.assertEqual(self.successResultOf(kept.when_registered()), NS_URI)
        self.assertEqual(self.ns.methods(), ["lookup", "register"])
        uri, metadata = self.ns.nameserver.lookup("thing", return_metadata=True)
        self.assertEqual((str(uri), set(metadata)), (OURS, {"a", "b"}))
        self.assertEqual((kept.registrations, kept.ns_uri), (1, NS_URI))
        self.assertTrue(all(proxy.closed for proxy in self.ns.proxies))

    def test_it_checks_every_interval_and_registers_again_what_was_lost(self) -> None:
        kept = self.keep()
        self.clock.advance(10)
        self.clock.advance(10)
        self.assertEqual(self.ns.methods(), ["lookup", "register", "lookup", "lookup"])
        self.ns.nameserver.remove("thing")
        self.clock.advance(9.9)
        self.assertIsNone(self.ns.registered())
        self.clock.advance(0.1)
        self.assertEqual(self.ns.registered(), OURS)
        self.assertEqual(kept.registrations, 2)
        self.assertEqual([time for time, method, _, _ in self.ns.calls if method == "lookup"],
                         [0, 10, 20, 30])

    def test_it_takes_its_name_back_from_another_uri(self) -> None:
        kept = self.keep()
        self.ns.nameserver.register("thing", OTHER)
        with capturedLogs() as events:
            self.clock.advance(10)
        self.assertEqual(self.ns.registered(), OURS)
        self.assertEqual(kept.registrations, 2)
        self.assertIn("registered thing again: it pointed to %s" % OTHER,
                      [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn])

    def test_safe_leaves_another_uri_alone_and_takes_the_name_when_free(self) -> None:
        self.ns.nameserver.register("thing", OTHER)
        with capturedLogs() as events:
            kept = self.keep(safe=True)
            waiting = kept.when_registered()
            self.clock.advance(10)
            self.clock.advance(10)
        self.assertEqual(self.ns.registered(), OTHER)
        self.assertNotIn("register", self.ns.methods())
        warnings = [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)  # once, not every interval
        self.assertIn(OTHER, warnings[0])
        self.assertNoResult(waiting)
        self.assertIsNone(kept.ns_uri)
        self.ns.nameserver.remove("thing")
        self.clock.advance(10)
        self.assertEqual(self.ns.registered(), OURS)
        self.assertEqual(self.successResultOf(waiting), NS_URI)
        self.assertEqual([kwargs["safe"] for _, method, _, kwargs in self.ns.calls
                          if method == "register"], [True])

    def test_safe_yields_to_a_registration_made_between_lookup_and_register(self) -> None:
        self.ns.hold["lookup"] = lookup = defer.Deferred()
        kept = self.keep(safe=True)
        self.ns.nameserver.register("thing", OTHER)
        del self.ns.hold["lookup"]
        lookup.errback(errors.NamingError("unknown name: thing"))
        self.assertEqual(self.ns.registered(), OTHER)
        self.assertEqual(kept.registrations, 0)
        self.clock.advance(10)  # no error, no backoff: a normal check
        self.assertEqual(self.ns.located, [0, 10])

    def test_a_registration_it_finds_in_place_is_adopted(self) -> None:
        self.ns.nameserver.register("thing", OURS)  # e.g. kept in a name server's sql storage
        kept = self.keep()
        self.assertEqual(self.successResultOf(kept.when_registered()), NS_URI)
        self.assertEqual((self.ns.methods(), kept.registrations), (["lookup"], 0))
        self.successResultOf(kept.stop())
        self.assertIsNone(self.ns.registered())


class NameServerDownTests(KeptTestCase):
    def test_retries_with_backoff_then_registers_with_the_new_name_server(self) -> None:
        kept = self.keep(interval=10)
        self.ns.up = False
        with capturedLogs() as events:
            self.clock.advance(10)  # fails: next in 0.5, 0.75, 1.125, ...
            for _ in range(12):
                self.clock.advance(self.clock.getDelayedCalls()[0].getTime()
                                   - self.clock.seconds())
        gaps = [b - a for a, b in zip(self.ns.located[1:], self.ns.located[2:], strict=False)]
        for failures, gap in enumerate(gaps, start=1):  # Twisted's backoffPolicy: + jitter < 1
            base = min(0.5 * 1.5 ** failures, 10)
            self.assertTrue(base <= gap < base + 1, (failures, gap))
        self.assertGreater(max(gaps), 10)  # capped at the interval (plus jitter)
        self.assertIsNone(kept.ns_uri)
        self.assertTrue(any("Failed to locate the nameserver" in formatEvent(e) for e in events
                            if e["log_level"] == LogLevel.warn))
        self.ns.restart_empty()
        with capturedLogs() as events:
            self.clock.advance(11)  # the next try (10 s + jitter)
        self.assertEqual(self.ns.registered(), OURS)
        self.assertEqual((kept.registrations, kept.ns_uri), (2, NS_URI))
        infos = [formatEvent(e) for e in events if e["log_level"] == LogLevel.info]
        self.assertIn("registered thing again: the name server did not have it", infos)
        last = self.ns.located[-1]
        self.clock.advance(10)  # back to the interval
        self.assertEqual(self.ns.located[-1], last + 10)

    def test_a_failing_call_counts_as_a_failure(self) -> None:
        self.ns.hold["lookup"] = defer.fail(errors.TimeoutError("call timed out after 10 s"))
        kept = self.keep(backoff=lambda failures: 3.0)
        self.assertEqual(kept.registrations, 0)
        del self.ns.hold["lookup"]
        self.clock.advance(3)
        self.assertEqual(kept.registrations, 1)

    def test_a_custom_backoff_gets_the_count_of_failures(self) -> None:
        seen: list[int] = []
        self.ns.up = False
        self.keep(backoff=lambda failures: seen.append(failures) or 1.0)
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(seen, [1, 2, 3])


class StopTests(KeptTestCase):
    def test_stop_removes_the_name_and_leaves_no_timer(self) -> None:
        kept = self.keep()
        self.successResultOf(kept.stop())
        self.assertIsNone(self.ns.registered())
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIs(kept.stop(), kept.stop())
        self.clock.advance(100)
        self.assertEqual(self.ns.methods(), ["lookup", "register", "lookup", "remove"])

    def test_stop_leaves_a_name_that_points_elsewhere(self) -> None:
        kept = self.keep()
        self.ns.nameserver.register("thing", OTHER)
        self.successResultOf(kept.stop())
        self.assertEqual(self.ns.registered(), OTHER)

    def test_stop_before_registering_fails_the_waiters_and_removes_nothing(self) -> None:
        self.ns.up = False
        kept = self.keep()
        waiting = kept.when_registered()
        self.successResultOf(kept.stop())
        self.failureResultOf(waiting, defer.CancelledError)
        self.failureResultOf(kept.when_registered(), defer.CancelledError)
        self.assertEqual(self.ns.located, [0])  # no locate just to remove
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_while_registering_still_removes(self) -> None:
        self.ns.hold["register"] = defer.Deferred()
        kept = self.keep()
        self.assertEqual(self.ns.methods(), ["lookup", "register"])
        self.ns.nameserver.register("thing", OURS)  # the server did it; the reply is late
        del self.ns.hold["register"]
        self.successResultOf(kept.stop())
        self.assertIsNone(self.ns.registered())
        self.assertTrue(all(proxy.closed for proxy in self.ns.proxies))

    def test_a_name_server_gone_at_stop_is_logged_not_raised(self) -> None:
        kept = self.keep()
        self.ns.up = False
        with capturedLogs() as events:
            self.successResultOf(kept.stop())
        self.assertTrue(any("could not remove thing" in formatEvent(e) for e in events))


class ArgumentTests(TestCase):
    def test_bad_arguments_fail_at_once(self) -> None:
        clock = task.Clock()
        locate = NameServerDouble(clock).locate
        self.assertRaises(TypeError, KeptRegistration, 5, OURS, locate, clock)
        self.assertRaises(TypeError, KeptRegistration, "x", OURS, locate, clock, metadata="ab")
        self.assertRaises(errors.PyroError, KeptRegistration, "x", "not a uri", locate, clock)
        self.assertRaises(ValueError, KeptRegistration, "x", OURS, locate, clock, interval=0)


class FailFastTests(KeptTestCase):
    """``when_registered(fail_fast=True)``: the first check decides (``serve --ns`` at startup)."""

    def start_waiting(self, **kwargs: Any) -> tuple[KeptRegistration, defer.Deferred[Any]]:
        kept = KeptRegistration("thing", OURS, self.ns.locate, self.clock,
                                **{"interval": 10, **kwargs})
        waiting = kept.when_registered(fail_fast=True)  # before the first check, as a caller
        kept.start()
        self.addCleanup(lambda: kept.stop() and None)
        return kept, waiting

    def test_no_name_server_fails_the_waiter_instead_of_a_warning(self) -> None:
        self.ns.up = False
        with capturedLogs() as events:
            kept, waiting = self.start_waiting(backoff=lambda failures: 1.0)
        error = self.failureResultOf(waiting, errors.NamingError).value
        self.assertEqual(str(error), "Failed to locate the nameserver")
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.warn], [])
        later = kept.when_registered(fail_fast=True)  # asked again: the same answer
        self.assertIs(self.failureResultOf(later, errors.NamingError).value, error)
        patient = kept.when_registered()  # it goes on trying all the same
        self.ns.up = True
        self.clock.advance(1)
        self.assertEqual(self.successResultOf(patient), NS_URI)
        self.assertEqual(self.successResultOf(kept.when_registered(fail_fast=True)), NS_URI)

    def test_a_refused_registration_fails_the_waiter(self) -> None:
        self.ns.hold["register"] = defer.fail(errors.NamingError("refused by the test"))
        _, waiting = self.start_waiting()
        self.assertEqual(str(self.failureResultOf(waiting, errors.NamingError).value),
                         "refused by the test")

    def test_safe_and_a_name_held_by_another_uri(self) -> None:
        self.ns.nameserver.register("thing", OTHER)
        _, waiting = self.start_waiting(safe=True)
        self.assertEqual(str(self.failureResultOf(waiting, errors.NamingError).value),
                         "thing is registered to %s" % OTHER)
        self.assertEqual(self.ns.registered(), OTHER)

    def test_success_and_later_failures_do_not_concern_it(self) -> None:
        kept, waiting = self.start_waiting()
        self.assertEqual(self.successResultOf(waiting), NS_URI)
        self.ns.up = False
        with capturedLogs() as events:
            self.clock.advance(10)
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.warn]), 1)
        self.assertEqual(self.successResultOf(kept.when_registered(fail_fast=True)), NS_URI)

    def test_a_waiter_that_stops_the_keeper_while_it_runs(self) -> None:
        """The waiter's callback runs inside the keeper's loop; stopping from it still stops
        (and removes the name), instead of leaving the loop running with nothing to stop it."""
        kept, waiting = self.start_waiting()
        stopped: list[defer.Deferred[None]] = []
        waiting.addCallback(lambda _: stopped.append(kept.stop()))
        self.assertEqual(len(stopped), 1)
        self.successResultOf(stopped[0])
        self.assertIsNone(self.ns.registered())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_waiter_that_stops_the_keeper_after_a_failure(self) -> None:
        self.ns.up = False
        kept, waiting = self.start_waiting()
        stopped: list[defer.Deferred[None]] = []
        waiting.addErrback(lambda _: stopped.append(kept.stop()))
        self.successResultOf(stopped[0])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.ns.located, [0])


class LogTests(KeptTestCase):
    """What a person running a server reads, exactly."""

    def lines(self, events: list[Any]) -> list[str]:
        return ["%s: %s" % (e["log_level"].name, formatEvent(e)) for e in events
                if e.get("log_namespace") == "pyro.nameserver"]

    def test_an_outage_is_one_warning_then_debug_until_it_is_back(self) -> None:
        with capturedLogs() as events:
            self.keep(backoff=lambda failures: 2.0)
            self.ns.up = False
            self.clock.advance(10)
            self.clock.advance(2)
            self.clock.advance(2)
            self.ns.restart_empty()
            self.clock.advance(2)
        ns = "PYRO:Pyro.NameServer@192.0.2.9:9090"
        retry = ("keeping thing registered: NamingError: Failed to locate the nameserver; "
                 "next try in 2.0 s")
        self.assertEqual(self.lines(events), [
            "info: registered thing as %s in the name server %s" % (OURS, ns),
            "warn: " + retry,
            "debug: " + retry,
            "debug: " + retry,
            "info: keeping thing registered: the name server answers again",
            "info: registered thing again: the name server did not have it",
        ])

    def test_adopted_removed_and_left(self) -> None:
        self.ns.nameserver.register("thing", OURS)
        with capturedLogs() as events:
            kept = self.keep()
            self.successResultOf(kept.stop())
        other = self.keep(uri=OTHER)
        self.ns.nameserver.register("thing", OURS)
        with capturedLogs() as more:
            self.successResultOf(other.stop())
        ns = "PYRO:Pyro.NameServer@192.0.2.9:9090"
        self.assertEqual(self.lines(events) + self.lines(more), [
            "info: found thing registered as %s in the name server %s" % (OURS, ns),
            "info: removed thing from the name server",
            "info: left thing in the name server: it points to %s now" % OURS,
        ])
