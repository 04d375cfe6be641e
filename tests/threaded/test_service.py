"""pyro.proxy against real Pyro4 4.82 peers: daemons of both server types and a name server,
each running in a background thread on 127.0.0.1 (see tests/support/pyro4_peers.py).

The PyroDeferredService tests are trial tests (they return Deferreds; pytest runs them):
every service is closed, and its worker threads joined, by a cleanup, so trial sees a clean
reactor. The PyroPatientProxy tests are plain blocking tests with an injected ``sleep``: they
wait for nothing real; the fake sleep starts the missing server at the try the test chooses.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import Pyro4
import Pyro4.errors
import Pyro4.util
import pytest
from twisted.internet import defer, reactor, threads
from twisted.logger import globalLogPublisher
from twisted.python import threadable
from twisted.trial import unittest

from pyro.proxy import PyroDeferredService, PyroPatientProxy
from pyro.threaded.workerconnection import WorkerConnection

from ..support.config import patch_config
from ..support.pyro4_peers import (
    free_port,
    pyro4_daemon,
    pyro4_nameserver,
    serve_pyro4,
    serve_pyro4_nameserver,
    start_pyro4_daemon,
    start_pyro4_nameserver,
)

SECRET = b"not so secret"

# Pyro4 4.82's request loop calls threading.Event.isSet(), deprecated since Python 3.10.
pytestmark = pytest.mark.filterwarnings("ignore:isSet\\(\\) is deprecated:DeprecationWarning")


@Pyro4.expose
class Servant:
    """The remote object. Thread-safe: Pyro4's thread server calls it from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clients: set[tuple[str, int]] = set()  # client socket addresses = connections
        self.seen: list[Any] = []
        self.entered = threading.Event()  # block() has started
        self.release = threading.Event()  # lets block() and note() finish
        self.noted = threading.Event()
        self.notes: list[Any] = []
        self._value = 0

    def _record(self, value: Any) -> None:
        with self.lock:
            self.clients.add(tuple(Pyro4.current_context.client_sock_addr))
            self.seen.append(value)

    def add(self, a: int, b: int) -> int:
        return a + b

    def echo(self, value: Any) -> Any:
        self._record(value)
        return value

    def fail_here(self) -> None:
        raise ValueError("the servant refuses")

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def block(self) -> str:
        self.entered.set()
        self.release.wait(10)
        return "released"

    @Pyro4.oneway
    def note(self, value: Any) -> None:
        self.release.wait(10)
        self.notes.append(value)
        self.noted.set()

    def serializer_id(self) -> int:
        return Pyro4.current_context.serializer_id

    def context(self) -> dict[str, Any]:
        context = Pyro4.current_context
        return {"correlation_id": str(context.correlation_id),
                "extra": bytes(context.annotations.get("XTRA", b"")).decode()}

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        self._value = value


class RecordingReactor:
    """The real reactor for callFromThread; system event triggers are recorded, not
    installed, so a test can play "reactor shutdown" without stopping the reactor."""

    def __init__(self) -> None:
        self.triggers: dict[int, tuple[str, str, Callable[..., Any]]] = {}
        self.removed: list[int] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        reactor.callFromThread(f, *args, **kwargs)

    def addSystemEventTrigger(self, phase: str, event: str, f: Callable[..., Any]) -> int:
        triggerID = len(self.triggers) + len(self.removed) + 1
        self.triggers[triggerID] = (phase, event, f)
        return triggerID

    def removeSystemEventTrigger(self, triggerID: int) -> None:
        del self.triggers[triggerID]
        self.removed.append(triggerID)


def remote_traceback(failure: Any) -> str:
    return "".join(Pyro4.util.getPyroTraceback(failure.type, failure.value,
                                               failure.getTracebackObject()))


class _DeferredServiceTests:
    """PyroDeferredService against a Pyro4 daemon of ``SERVERTYPE``; mixed into trial cases."""

    SERVERTYPE: str
    timeout = 15

    def setUp(self) -> None:
        self.servant = Servant()
        self.peer = serve_pyro4(self, self.SERVERTYPE)
        self.uri = self.peer.register(self.servant, "servant")
        # Cleanups run last-in first-out: services (registered later) close first, then a
        # blocked servant is let go, then the daemon stops.
        self.addCleanup(self.servant.release.set)

    def service(self, proxy: Pyro4.Proxy | None = None, **kwargs: Any) -> PyroDeferredService:
        service = PyroDeferredService(proxy if proxy is not None else Pyro4.Proxy(self.uri),
                                      **kwargs)
        self.addCleanup(service.close)
        return service

    @defer.inlineCallbacks
    def test_result(self):
        service = self.service()
        self.assertEqual((yield service.add(2, 3)), 5)
        self.assertEqual((yield service.callRemote("add", 4, b=5)), 9)

    @defer.inlineCallbacks
    def test_callbacks_run_in_the_reactor_thread(self):
        service = self.service()
        where = []

        def record(result):
            where.append((threadable.isInIOThread(), threading.current_thread()))
            return result

        yield service.add(1, 1).addCallback(record)
        yield service.fail_here().addErrback(lambda failure: record(None))
        self.assertEqual(where, [(True, threading.current_thread())] * 2)

    @defer.inlineCallbacks
    def test_remote_exception_keeps_type_and_remote_traceback(self):
        service = self.service()
        failures = []
        yield service.fail_here().addErrback(failures.append)
        [failure] = failures
        self.assertIs(failure.type, ValueError)
        self.assertEqual(str(failure.value), "the servant refuses")
        self.assertTrue(failure.value._pyroTraceback)
        text = remote_traceback(failure)
        self.assertIn("Remote traceback", text)
        self.assertIn("fail_here", text)

    @defer.inlineCallbacks
    def test_unknown_method_and_attribute_misuse(self):
        service = self.service()
        yield self.assertFailure(service.no_such_method(), AttributeError)
        failure = yield self.assertFailure(service.value(), AttributeError)
        self.assertIn("service.getattr('value')", str(failure))

    @defer.inlineCallbacks
    def test_exposed_attributes(self):
        service = self.service()
        self.assertEqual((yield service.getattr("value")), 0)
        self.assertIsNone((yield service.setattr("value", 42)))
        self.assertEqual((yield service.getattr("value")), 42)

    @defer.inlineCallbacks
    def test_oneway_fires_once_sent(self):
        service = self.service()
        result = yield service.note("hello")
        self.assertIsNone(result)
        # The servant is still waiting for `release`: the Deferred did not wait for it.
        self.assertEqual(self.servant.notes, [])
        self.servant.release.set()
        self.assertTrue((yield threads.deferToThread(self.servant.noted.wait, 5)))
        self.assertEqual(self.servant.notes, ["hello"])

    @defer.inlineCallbacks
    def test_concurrent_calls_share_a_bounded_pool_of_connections(self):
        service = self.service(max_workers=3)
        results = yield defer.gatherResults([service.echo(i) for i in range(50)])
        self.assertEqual(results, list(range(50)))
        self.assertEqual(sorted(self.servant.seen), list(range(50)))
        self.assertGreaterEqual(len(self.servant.clients), 1)
        self.assertLessEqual(len(self.servant.clients), 3)
        self.assertLessEqual(len(service._workers.pool.threads), 3)

    @defer.inlineCallbacks
    def test_connection_is_reused_between_calls(self):
        service = self.service(max_workers=1)
        for i in range(5):
            yield service.echo(i)
        self.assertEqual(len(self.servant.clients), 1)

    @defer.inlineCallbacks
    def test_async_mode_proxy_is_called_synchronously_by_the_workers(self):
        proxy = Pyro4.Proxy(self.uri)
        proxy._pyroAsync()
        self.assertEqual((yield self.service(proxy).add(1, 2)), 3)

    @defer.inlineCallbacks
    def test_cancel_in_flight_drops_the_result(self):
        service = self.service(max_workers=1)
        d = service.slow(0.2)
        d.cancel()
        self.assertTrue(d.called)  # at once, not when the servant returns
        yield self.assertFailure(d, defer.CancelledError)
        # With one worker this call runs after the cancelled one; its result is delivered
        # (and dropped) before this one's. Trial would flag an AlreadyCalledError logged then.
        self.assertEqual((yield service.echo("after")), "after")

    @defer.inlineCallbacks
    def test_cancel_before_start_never_sends(self):
        service = self.service(max_workers=1)
        blocked = service.block()
        never = service.echo("never")
        never.cancel()
        yield self.assertFailure(never, defer.CancelledError)
        self.servant.release.set()
        self.assertEqual((yield blocked), "released")
        self.assertEqual((yield service.echo("after")), "after")
        self.assertEqual(self.servant.seen, ["after"])

    @defer.inlineCallbacks
    def test_timeout_set_through_the_service_reaches_existing_copies(self):
        proxy = Pyro4.Proxy(self.uri)
        service = self.service(proxy, max_workers=1)
        yield service.echo(1)  # the worker's copy exists now, without a timeout
        service._pyroTimeout = 0.2
        self.assertEqual(service._pyroTimeout, 0.2)
        self.assertEqual(proxy._pyroTimeout, 0.2)
        yield self.assertFailure(service.slow(0.5), Pyro4.errors.TimeoutError)
        service._pyroTimeout = None
        self.assertEqual((yield service.echo(2)), 2)

    @defer.inlineCallbacks
    def test_worker_copies_use_worker_connections_also_after_reconnecting(self):
        # See pyro/workerconnection.py: each worker copy's connection is a WorkerConnection.
        service = self.service(max_workers=1)
        big = "".join(map(str, range(60_000)))  # ~290 kB: several reads (> READ_SIZE)
        self.assertEqual((yield service.echo(big)), big)
        (copy_,) = service._workers.copies
        first = copy_._pyroConnection
        self.assertIs(type(first), WorkerConnection)
        self.assertEqual((yield service.echo("small")), "small")
        self.assertEqual(first._buffered, b"")
        # A timeout makes Pyro4 drop the connection; the next call's new one is adopted too.
        service._pyroTimeout = 0.2
        yield self.assertFailure(service.slow(0.5), Pyro4.errors.TimeoutError)
        service._pyroTimeout = None
        self.assertEqual((yield service.echo(big)), big)
        (copy_,) = service._workers.copies
        self.assertIsNot(copy_._pyroConnection, first)
        self.assertIs(type(copy_._pyroConnection), WorkerConnection)

    @defer.inlineCallbacks
    def test_handshake_serializer_and_hooks_of_the_wrapped_proxy(self):
        seen = []

        class Validating(Pyro4.Daemon):
            def validateHandshake(self, conn, data):
                seen.append(data)
                if data != "let me in":
                    raise ValueError("members only")
                return "welcome"

        class Checking(Pyro4.Proxy):
            def _pyroValidateHandshake(self, response):
                seen.append(("validated", response))

        peer = serve_pyro4(self, self.SERVERTYPE, daemon_class=Validating,
                           SERIALIZERS_ACCEPTED={"serpent", "json"})
        uri = peer.register(Servant(), "validating")
        proxy = Checking(uri)
        proxy._pyroHandshake = "let me in"
        proxy._pyroSerializer = "json"
        service = self.service(proxy, max_workers=1)
        json_id = Pyro4.util.get_serializer("json").serializer_id
        self.assertEqual((yield service.serializer_id()), json_id)
        self.assertEqual(seen, ["let me in", ("validated", "welcome")])
        refused = self.service(Pyro4.Proxy(uri))
        failure = yield self.assertFailure(refused.add(1, 2), Pyro4.errors.CommunicationError)
        self.assertIn("members only", str(failure))

    @defer.inlineCallbacks
    def test_max_retries_of_the_wrapped_proxy(self):
        def broken(service):
            # The worker's connection breaks while it is idle (as when a server restarts).
            (copy_,) = service._workers.copies
            copy_._pyroConnection.sock.shutdown(socket.SHUT_RDWR)

        retrying = Pyro4.Proxy(self.uri)
        retrying._pyroMaxRetries = 1
        service = self.service(retrying, max_workers=1)
        self.assertEqual((yield service.add(1, 2)), 3)
        broken(service)
        self.assertEqual((yield service.add(2, 3)), 5)  # Pyro4 reconnected and retried

        once = self.service(Pyro4.Proxy(self.uri), max_workers=1)
        self.assertEqual((yield once.add(1, 2)), 3)
        broken(once)
        yield self.assertFailure(once.add(2, 3), Pyro4.errors.ConnectionClosedError)
        self.assertEqual((yield once.add(3, 4)), 7)  # the next call reconnects

    @defer.inlineCallbacks
    def test_hmac_keyed_daemon(self):
        peer = serve_pyro4(self, self.SERVERTYPE, hmac_key=SECRET)
        uri = peer.register(Servant(), "keyed")
        keyed = Pyro4.Proxy(uri)
        keyed._pyroHmacKey = SECRET
        self.assertEqual((yield self.service(keyed).add(1, 2)), 3)

        service = self.service(Pyro4.Proxy(uri), max_workers=1)
        yield self.assertFailure(service.add(1, 2), Pyro4.errors.CommunicationError)
        service._pyroHmacKey = SECRET  # reaches the worker's next copy
        self.assertEqual((yield service.add(1, 2)), 3)

    @defer.inlineCallbacks
    def test_pyroname_and_pyrometa_through_a_name_server(self):
        ns = serve_pyro4_nameserver(self, self.SERVERTYPE)
        ns.register_name("test.servant", self.uri, metadata={"class:tests.Servant"})
        byName = self.service(Pyro4.Proxy(ns.pyroname("test.servant")))
        self.assertEqual((yield byName.add(1, 2)), 3)
        byMeta = self.service(Pyro4.Proxy(ns.pyrometa("class:tests.Servant")))
        self.assertEqual((yield byMeta.add(3, 4)), 7)
        # The wrapped proxies were never used (nor bound): they still name the name server.
        self.assertEqual(byName._pyroUri.protocol, "PYRONAME")
        yield self.assertFailure(
            self.service(Pyro4.Proxy(ns.pyroname("no.such.name"))).add(1, 2),
            Pyro4.errors.NamingError)

    @defer.inlineCallbacks
    def test_call_context_travels_with_the_call(self):
        # First: creating a Pyro4.Proxy clears the creating thread's annotations.
        service = self.service()
        context = Pyro4.current_context
        self.addCleanup(setattr, context, "correlation_id", None)
        self.addCleanup(setattr, context, "annotations", {})
        self.addCleanup(setattr, context, "response_annotations", {})
        correlation = uuid.uuid4()
        context.correlation_id = correlation
        context.annotations = {"XTRA": b"extra"}
        seen = []
        result = yield service.context().addCallback(
            lambda r: seen.append(dict(context.response_annotations)) or r)
        self.assertEqual(result, {"correlation_id": str(correlation), "extra": "extra"})
        self.assertEqual(context.annotations, {})  # cleared after the call, as Pyro4 does
        self.assertEqual(bytes(seen[0]["CORR"]), correlation.bytes)

    @defer.inlineCallbacks
    def test_close_stops_worker_threads_and_allows_a_fresh_start(self):
        service = self.service(max_workers=2)
        yield defer.gatherResults([service.echo(i) for i in range(4)])
        workers = service._workers
        pool_threads = list(workers.pool.threads)
        self.assertTrue(pool_threads)
        yield service.close()
        self.assertIsNone(service._workers)
        self.assertEqual([t for t in pool_threads if t.is_alive()], [])
        self.assertEqual(workers.copies, [])
        self.assertEqual((yield service._pyroRelease()), None)  # closing twice is fine
        self.assertEqual((yield service.echo("again")), "again")

    @defer.inlineCallbacks
    def test_close_does_not_wait_for_a_hung_server(self):
        service = self.service()
        blocked = service.block()
        yield threads.deferToThread(self.servant.entered.wait, 5)
        closed = service.close()
        yield self.assertFailure(blocked, Pyro4.errors.ConnectionClosedError)
        yield closed
        self.assertFalse(self.servant.release.is_set())  # the servant is still busy

    @defer.inlineCallbacks
    def test_reactor_shutdown_trigger_closes_the_service(self):
        fake = RecordingReactor()
        service = self.service(reactor=fake)
        self.assertEqual(fake.triggers, {})  # nothing started before the first call
        yield service.echo(1)
        [(phase, event, trigger)] = fake.triggers.values()
        self.assertEqual((phase, event), ("before", "shutdown"))
        pool_threads = list(service._workers.pool.threads)
        yield trigger()  # what the reactor does when it shuts down
        self.assertEqual([t for t in pool_threads if t.is_alive()], [])

        yield service.echo(2)  # starts again, with a new trigger...
        self.assertEqual(len(fake.triggers), 2)
        yield service.close()  # ...which an explicit close removes
        self.assertEqual(len(fake.triggers), 1)
        self.assertEqual(len(fake.removed), 1)

    def test_pyro_attributes_pass_through_and_dunders_are_not_remote(self):
        proxy = Pyro4.Proxy(self.uri)
        service = PyroDeferredService(proxy)
        self.assertEqual(service._pyroUri, proxy._pyroUri)
        self.assertIs(service.proxy, proxy)
        self.assertFalse(hasattr(service, "__iter__"))
        with self.assertRaises(ValueError):
            PyroDeferredService(proxy, max_workers=0)
        with self.assertRaises(TypeError):
            PyroDeferredService(object())


class ThreadServerDeferredServiceTests(_DeferredServiceTests, unittest.TestCase):
    SERVERTYPE = "thread"


class MultiplexServerDeferredServiceTests(_DeferredServiceTests, unittest.TestCase):
    SERVERTYPE = "multiplex"


class PatientProxyInServiceTests(unittest.TestCase):
    timeout = 15

    @defer.inlineCallbacks
    def test_service_waits_for_the_name_server(self):
        servant = Servant()
        peer = serve_pyro4(self, "multiplex")
        uri = peer.register(servant, "servant")
        port = free_port()
        started = []

        def startNameServer():
            ns = start_pyro4_nameserver(port=port)
            self.addCleanup(threads.deferToThread, ns.stop)
            ns.register_name("test.patient", uri)
            started.append(ns)

        sleep = FakeSleep({2: startNameServer})  # called from a worker thread
        proxy = PyroPatientProxy(f"PYRONAME:test.patient@127.0.0.1:{port}", sleep=sleep)
        service = PyroDeferredService(proxy)
        self.addCleanup(service.close)
        self.assertEqual((yield service.add(20, 22)), 42)
        self.assertEqual(len(sleep.calls), 2)
        self.assertEqual(len(started), 1)


REACTOR_SHUTDOWN_SCRIPT = """
import threading, sys
import Pyro4
from twisted.internet import reactor, threads
from pyro.proxy import PyroDeferredService
from tests.support.pyro4_peers import start_pyro4_daemon

entered, forever = threading.Event(), threading.Event()

@Pyro4.expose
class Hung:
    def block(self):
        entered.set()
        forever.wait(30)

peer = start_pyro4_daemon("thread")
service = PyroDeferredService(Pyro4.Proxy(peer.register(Hung())))
outcome = []

def go():
    d = service.block()
    d.addErrback(lambda failure: outcome.append(failure.type.__name__))
    threads.deferToThread(entered.wait, 10).addCallback(lambda _: reactor.stop())

reactor.callWhenRunning(go)
reactor.run()
workers = [t for t in threading.enumerate() if t.name.startswith("PoolThread-PyroDeferred")]
print(outcome, workers)
forever.set()
peer.stop()
sys.exit(0 if outcome == ["ConnectionClosedError"] and not workers else 1)
"""


def test_reactor_shutdown_does_not_hang_on_a_call_in_progress():
    # The real reactor, really stopped: only possible in a process of its own.
    root = Path(__file__).resolve().parent.parent.parent
    result = subprocess.run([sys.executable, "-c", REACTOR_SHUTDOWN_SCRIPT], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_installs_no_reactor():
    code = ("import sys, pyro.proxy; "
            "sys.exit('twisted.internet.reactor' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# --------------------------------------------------------------------------------------------
# PyroPatientProxy: blocking tests, fake sleep
# --------------------------------------------------------------------------------------------

class FakeSleep:
    """Records the waits instead of waiting; runs ``actions[n]`` at the n-th call (1-based)."""

    def __init__(self, actions: dict[int, Callable[[], None]] | None = None) -> None:
        self.calls: list[float] = []
        self.actions = actions or {}

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        action = self.actions.get(len(self.calls))
        if action is not None:
            action()


@pytest.fixture
def servant_peer():
    """A multiplex Pyro4 daemon serving a Servant as ``servant``."""
    with pyro4_daemon("multiplex") as peer:
        peer.register(Servant(), "servant")
        yield peer


@pytest.fixture
def log_events():
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def messages(events: list[dict[str, Any]]) -> list[str]:
    from twisted.logger import formatEvent

    return [formatEvent(e) for e in events if e.get("log_namespace") == "pyro.proxy"]


@pytest.fixture
def cleanups():
    stack: list[Callable[[], None]] = []
    yield stack.append
    for cleanup in reversed(stack):
        cleanup()


def test_patient_proxy_waits_for_the_name_server(servant_peer, log_events, cleanups):
    port = free_port()
    servant_uri = f"PYRO:servant@{servant_peer.location}"

    def startNameServer():
        ns = start_pyro4_nameserver(port=port)
        cleanups(ns.stop)
        ns.register_name("test.patient", servant_uri)

    sleep = FakeSleep({3: startNameServer})
    proxy = PyroPatientProxy(f"PYRONAME:test.patient@127.0.0.1:{port}", sleep=sleep)
    cleanups(proxy._pyroRelease)
    assert proxy.add(1, 2) == 3
    assert len(sleep.calls) == 3
    assert all(0 <= s <= 2.0 for s in sleep.calls)
    assert proxy._pyroUri.protocol == "PYRONAME"  # not bound: reconnects resolve again
    logged = messages(log_events)
    assert any("is not available yet" in m for m in logged)
    assert any("found the name server" in m for m in logged)


def test_patient_proxy_logs_losing_and_finding_the_name_server(servant_peer, log_events,
                                                               cleanups):
    port = free_port()
    servant_uri = f"PYRO:servant@{servant_peer.location}"
    ns = start_pyro4_nameserver(port=port)
    ns.register_name("test.patient", servant_uri)

    def restartNameServer():
        again = start_pyro4_nameserver(port=port)
        cleanups(again.stop)
        again.register_name("test.patient", servant_uri)

    sleep = FakeSleep({1: restartNameServer})
    proxy = PyroPatientProxy(f"PYRONAME:test.patient@127.0.0.1:{port}", sleep=sleep)
    cleanups(proxy._pyroRelease)
    assert proxy.add(1, 2) == 3
    assert sleep.calls == []
    ns.stop()
    proxy._pyroRelease()
    assert proxy.add(2, 2) == 4  # resolves again: the name server is gone, then back
    assert len(sleep.calls) == 1
    logged = messages(log_events)
    events = [m.split(" the name server")[0] for m in logged if " the name server" in m]
    assert events == ["found", "lost", "found"]


def test_patient_proxy_waits_for_the_name_to_be_registered(servant_peer):
    with pyro4_nameserver() as ns:
        sleep = FakeSleep({2: lambda: ns.register_name(
            "test.later", f"PYRO:servant@{servant_peer.location}")})
        with PyroPatientProxy(ns.pyroname("test.later"), sleep=sleep) as proxy:
            assert proxy.echo("x") == "x"
        assert len(sleep.calls) == 2


def test_patient_proxy_waits_for_its_daemon(cleanups):
    port = free_port()

    def startDaemon():
        peer = start_pyro4_daemon("thread", port=port)
        cleanups(peer.stop)
        peer.register(Servant(), "servant")

    sleep = FakeSleep({2: startDaemon})
    with PyroPatientProxy(f"PYRO:servant@127.0.0.1:{port}", sleep=sleep) as proxy:
        assert proxy._pyroBind() is True
        assert proxy.add(2, 2) == 4
    assert len(sleep.calls) == 2


def test_patient_proxy_gives_up_naming_the_uri():
    port = free_port()
    uri = f"PYRONAME:never.there@127.0.0.1:{port}"
    sleep = FakeSleep()
    proxy = PyroPatientProxy(uri, retry_interval=0.5, max_tries=4, sleep=sleep)
    with pytest.raises(Pyro4.errors.NamingError) as info:
        proxy.add(1, 2)
    assert uri in str(info.value)
    assert "4 tries" in str(info.value)
    assert isinstance(info.value.__cause__, Pyro4.errors.NamingError)
    assert len(sleep.calls) == 3
    assert all(0 <= s <= 0.5 for s in sleep.calls)


def test_patient_proxy_gives_up_on_a_silent_daemon():
    uri = f"PYRO:servant@127.0.0.1:{free_port()}"
    sleep = FakeSleep()
    proxy = PyroPatientProxy(uri, max_tries=2, sleep=sleep)
    with pytest.raises(Pyro4.errors.CommunicationError) as info:
        proxy._pyroBind()
    assert uri in str(info.value)
    assert len(sleep.calls) == 1


def test_patient_proxy_does_not_wait_for_a_wrong_hmac_key():
    with pyro4_daemon("multiplex", Servant(), hmac_key=SECRET) as peer:
        sleep = FakeSleep()
        with PyroPatientProxy(peer.uris[0], sleep=sleep) as proxy:
            with pytest.raises(Pyro4.errors.CommunicationError, match="hmac"):
                proxy.add(1, 2)
            proxy._pyroHmacKey = SECRET
            assert proxy.add(1, 2) == 3
        assert sleep.calls == []


def test_patient_proxy_does_not_wait_for_a_name_server_with_another_key():
    with pyro4_nameserver(hmac_key=SECRET) as ns:
        sleep = FakeSleep()
        proxy = PyroPatientProxy(ns.pyroname("anything"), sleep=sleep)
        with pytest.raises(Pyro4.errors.NamingError):
            proxy._pyroBind()
        assert sleep.calls == []


def test_bound_patient_proxy_follows_its_object_to_a_new_address(cleanups):
    servant = Servant()
    with pyro4_nameserver() as ns:
        first = start_pyro4_daemon("multiplex")
        cleanups(first.stop)
        ns.register_name("test.moving", first.register(servant, "servant"))
        proxy = PyroPatientProxy(ns.pyroname("test.moving"), sleep=FakeSleep())
        cleanups(proxy._pyroRelease)
        proxy._pyroBind()
        assert proxy._pyroUri.location == first.location
        first.stop()
        second = start_pyro4_daemon("multiplex")
        cleanups(second.stop)
        ns.register_name("test.moving", second.register(Servant(), "servant"))
        proxy._pyroRelease()
        assert proxy.add(1, 1) == 2  # the old address fails; the name server knows the new one
        assert proxy._pyroUri.location == second.location
        assert len(proxy._pyroSleep.calls) == 1


def test_patient_proxy_copy_keeps_its_patience():
    sleep = FakeSleep()
    proxy = PyroPatientProxy("PYRONAME:some.name@127.0.0.1:1", retry_interval=0.25,
                             max_tries=7, sleep=sleep)
    proxy._pyroTimeout = 3
    duplicate = copy.copy(proxy)
    assert type(duplicate) is PyroPatientProxy
    assert duplicate._pyroRetryInterval == 0.25
    assert duplicate._pyroMaxTries == 7
    assert duplicate._pyroSleep is sleep
    assert duplicate._pyroTimeout == 3
    assert duplicate._pyroPatientUri == proxy._pyroPatientUri
    # Settings are plain attributes; setting them makes no connection.
    duplicate._pyroMaxTries = 1
    assert proxy._pyroMaxTries == 7
    assert duplicate._pyroConnection is None


def test_patient_proxy_validates_its_settings():
    with pytest.raises(ValueError):
        PyroPatientProxy("PYRO:x@127.0.0.1:1", max_tries=0)
    with pytest.raises(ValueError):
        PyroPatientProxy("PYRO:x@127.0.0.1:1", retry_interval=-1)


def test_patient_proxy_reconnect_is_patient(cleanups):
    port = free_port()

    def startDaemon():
        peer = start_pyro4_daemon("multiplex", port=port)
        cleanups(peer.stop)
        peer.register(Servant(), "servant")

    sleep = FakeSleep({1: startDaemon})
    with PyroPatientProxy(f"PYRO:servant@127.0.0.1:{port}", sleep=sleep) as proxy:
        proxy._pyroReconnect(tries=3)
        assert proxy._pyroConnection is not None
    assert len(sleep.calls) == 1


def test_peers_patch_config():
    before = Pyro4.config.SERVERTYPE
    with pyro4_daemon("multiplex" if before == "thread" else "thread"):
        assert Pyro4.config.SERVERTYPE == before


class PatchConfigTests(unittest.SynchronousTestCase):
    def test_patch_config_restores(self):
        before = Pyro4.config.COMMTIMEOUT
        inner = unittest.SynchronousTestCase()
        patch_config(inner, COMMTIMEOUT=1.5)
        self.assertEqual(Pyro4.config.COMMTIMEOUT, 1.5)
        inner.doCleanups()
        self.assertEqual(Pyro4.config.COMMTIMEOUT, before)
