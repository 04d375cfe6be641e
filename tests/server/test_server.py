"""Pyro4ProtocolFactory served on a real socket, called by real, unmodified Pyro4 proxies."""

from __future__ import annotations

import random
import threading
from typing import Any

import Pyro4
import Pyro4.errors
import Pyro4.util
from Pyro4 import errors
from Pyro4.core import SerializedBlob
from Pyro4.message import Message
from twisted.internet import defer, reactor, task
from twisted.python.threadable import isInIOThread
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from pyro.protocol import Pyro4ProtocolFactory

from ..support.config import patch_config
from ..support.our_server import call, in_thread, serve
from ..support.pyro4_peers import serve_pyro4


class Unserializable(Exception):
    def __init__(self):
        super().__init__("cannot travel")
        self.payload = threading.Lock()  # no serializer can send a lock


@Pyro4.expose
class Calculator:
    def __init__(self):
        self._value = 1
        self.secret_calls = 0

    def add(self, a, b):
        return a + b

    def fail(self):
        raise ValueError("the servant failed")

    def fail_unserializable(self):
        raise Unserializable()

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new):
        self._value = new

    def _private(self):
        self.secret_calls += 1

    @Pyro4.expose
    def annotate(self):
        Pyro4.current_context.response_annotations["XTRA"] = b"extra"
        return str(Pyro4.current_context.correlation_id)

    def blob_info(self, blob):
        return [blob.info, blob.deserialized()]

    def stream(self, n):
        yield from range(n)

    def peer(self):
        return list(Pyro4.current_context.client.sock.getpeername())


@Pyro4.expose
class Dice:
    """A simulation's servant: seeded once, its rolls are reproducible run after run."""

    def __init__(self):
        random.seed(1234)

    def roll(self):
        return random.randint(1, 6)


@Pyro4.expose
class Huge:
    """A scalar result that cannot be written: Python refuses ``repr`` of an int of more
    than ``sys.get_int_max_str_digits()`` digits (4300), and so does serpent."""

    def huge(self):
        return 10 ** 5000

    def add(self, a, b):
        return a + b


class Unexposed:
    def __init__(self):
        self.ran = False

    def run(self):
        self.ran = True


class FeaturesTest(unittest.TestCase):
    def setUp(self):
        self.factory = serve(self)
        self.calculator = Calculator()
        self.uri = self.factory.register(self.calculator, "calc")

    @defer.inlineCallbacks
    def test_call_and_uri(self):
        self.assertEqual(str(self.uri), "PYRO:calc@%s" % self.factory.locationStr)
        self.assertEqual((yield call(self.uri, "add", 40, 2)), 42)

    @defer.inlineCallbacks
    def test_exception_carries_remote_traceback(self):
        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                try:
                    proxy.fail()
                except ValueError:
                    return "".join(Pyro4.util.getPyroTraceback())

        text = yield in_thread(blocking)
        self.assertIn("in fail", text)
        self.assertIn("the servant failed", text)
        remote = text.split("Remote traceback:")[1]
        self.assertNotIn("twisted", remote)
        self.assertNotIn("dispatch.py", remote)

    @defer.inlineCallbacks
    def test_unserializable_exception_becomes_pyroerror_naming_it(self):
        with self.assertRaises(errors.PyroError) as caught:
            yield call(self.uri, "fail_unserializable")
        self.assertIn("Unserializable", str(caught.exception))
        self.assertIn("cannot travel", str(caught.exception))

    @defer.inlineCallbacks
    def test_unknown_object(self):
        uri = self.factory.uriFor("nobody")
        with self.assertRaises(errors.CommunicationError) as caught:  # refused at handshake
            yield call(uri, "add", 1, 2)
        self.assertIn("unknown object", str(caught.exception))

    @defer.inlineCallbacks
    def test_private_dunder_and_unexposed_are_refused_without_running(self):
        unexposed = Unexposed()
        self.factory.register(unexposed, "unexposed")

        def blocking():
            outcomes = []
            with Pyro4.Proxy(self.uri) as proxy:
                proxy._pyroBind()
                for name in ("_private", "__class__", "__init__", "__dict__"):
                    try:
                        proxy._pyroInvoke(name, (), {})
                    except AttributeError as exc:
                        outcomes.append(str(exc))
            with Pyro4.Proxy(self.factory.uriFor("unexposed")) as proxy:
                Pyro4.config.METADATA = False
                try:
                    proxy.run()
                except AttributeError as exc:
                    outcomes.append(str(exc))
                finally:
                    Pyro4.config.METADATA = True
            return outcomes

        outcomes = yield in_thread(blocking)
        self.assertEqual(len(outcomes), 5)
        self.assertTrue(all("private" in o or "unexposed" in o for o in outcomes), outcomes)
        self.assertEqual(self.calculator.secret_calls, 0)
        self.assertFalse(unexposed.ran)

    @defer.inlineCallbacks
    def test_exposed_attributes(self):
        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                before = proxy.value
                proxy.value = 99
                return before, proxy.value, sorted(proxy._pyroAttrs)

        self.assertEqual((yield in_thread(blocking)), (1, 99, ["value"]))
        self.assertEqual(self.calculator.value, 99)

    @defer.inlineCallbacks
    def test_metadata_on_connect(self):
        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                proxy._pyroBind()
                return proxy._pyroMethods, proxy._pyroOneway

        methods, oneway = yield in_thread(blocking)
        self.assertIn("add", methods)
        self.assertNotIn("_private", methods)

    @defer.inlineCallbacks
    def test_batch_stops_at_first_exception(self):
        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                batch = Pyro4.batch(proxy)
                batch.add(1, 2)
                batch.fail()
                batch.add(3, 4)
                results = batch()
                first = next(results)
                try:
                    next(results)
                except ValueError as exc:
                    return first, str(exc), list(results)

        self.assertEqual((yield in_thread(blocking)), (3, "the servant failed", []))

    @defer.inlineCallbacks
    def test_item_stream_and_close_stream(self):
        lost = defer.Deferred()
        self.factory.clientDisconnect = lambda conn: lost.callback(None)

        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                whole = list(proxy.stream(5))
                partial = proxy.stream(5)
                first = next(partial)
                partial.close()
                return whole, first

        self.assertEqual((yield in_thread(blocking)), ([0, 1, 2, 3, 4], 0))
        yield lost  # requests are served in order: close_stream came before the disconnect
        self.assertEqual(self.factory.streaming_responses, {})  # though streams linger (30 s)

    @defer.inlineCallbacks
    def test_streams_are_dropped_when_their_client_disconnects(self):
        patch_config(self, ITER_STREAM_LINGER=0)
        lost = defer.Deferred()
        self.factory.clientDisconnect = lambda conn: lost.callback(None)

        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                return next(proxy.stream(5))

        self.assertEqual((yield in_thread(blocking)), 0)
        yield lost
        self.assertEqual(self.factory.streaming_responses, {})

    @defer.inlineCallbacks
    def test_ping_message(self):
        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                proxy._pyroBind()
                Message.ping(proxy._pyroConnection)
                return proxy.add(1, 1)

        self.assertEqual((yield in_thread(blocking)), 2)

    @defer.inlineCallbacks
    def test_daemon_object(self):
        def blocking():
            with Pyro4.Proxy(self.factory.uriFor(Pyro4.constants.DAEMON_NAME)) as daemon:
                return (daemon.ping(), sorted(daemon.registered()), daemon.info(),
                        daemon.get_metadata("calc"))

        ping, registered, info, meta = yield in_thread(blocking)
        self.assertIsNone(ping)
        self.assertEqual(registered, ["Pyro.Daemon", "calc"])
        self.assertIn(self.factory.locationStr, info)
        self.assertIn("add", meta["methods"])

    @defer.inlineCallbacks
    def test_correlation_id_and_response_annotations(self):
        seen = {}

        class AnnotatedProxy(Pyro4.Proxy):
            def _pyroResponseAnnotations(self, annotations, msgtype):
                seen.update(annotations)

        def blocking():
            import uuid

            Pyro4.current_context.correlation_id = uuid.UUID(int=12345)
            try:
                with AnnotatedProxy(self.uri) as proxy:
                    return proxy.annotate()
            finally:
                Pyro4.current_context.correlation_id = None

        corr = yield in_thread(blocking)
        self.assertEqual(corr, "00000000-0000-0000-0000-000000003039")
        self.assertEqual(seen["XTRA"], b"extra")
        self.assertEqual(seen["CORR"], (12345).to_bytes(16, "big"))

    @defer.inlineCallbacks
    def test_the_servers_correlation_ids_leave_the_random_module_alone(self):
        """A call whose client sent no correlation id gets a new one; making it must not
        draw from the :mod:`random` module's generator, which servants own: a servant that
        seeds it gets the rolls it expects, as under Pyro4's daemon (uuid4: os.urandom). (A
        generator of the server's own also keeps ids unrelated to ``random.seed`` calls.)"""
        def rolls(uri):
            with Pyro4.Proxy(uri) as proxy:
                return [proxy.roll() for _ in range(8)]

        seeded = random.Random(1234)
        expected = [seeded.randint(1, 6) for _ in range(8)]
        pyro4 = serve_pyro4(self, "thread")
        for server in (pyro4, self.factory):
            uri = server.register(Dice())
            self.assertEqual((yield in_thread(rolls, uri)), expected, uri)

    @defer.inlineCallbacks
    def test_a_scalar_result_that_cannot_be_serialized_is_the_clients_error(self):
        """As from Pyro4's daemon: the ValueError reaches the client (Pyro4's and Pyro5's),
        the connection stays up, and nothing is logged as an unhandled error."""
        import Pyro5.api

        def outcome(proxy_class, uri):
            with proxy_class(uri) as proxy:
                try:
                    proxy.huge()
                except Exception as exc:  # (a ConnectionClosedError if the server hung up)
                    return type(exc).__name__, "integer string conversion" in str(exc)
                return "no error", proxy.add(1, 2)

        pyro4 = serve_pyro4(self, "thread")
        expected = ("ValueError", True)
        self.assertEqual((yield in_thread(outcome, Pyro4.Proxy, pyro4.register(Huge()))),
                         expected)
        uri = self.factory.register(Huge())
        self.assertEqual((yield in_thread(outcome, Pyro4.Proxy, uri)), expected)
        self.assertEqual((yield in_thread(outcome, Pyro5.api.Proxy, str(uri))), expected)

    @defer.inlineCallbacks
    def test_keepserialized_blob(self):
        def blocking():
            with Pyro4.Proxy(self.uri) as proxy:
                return proxy.blob_info(SerializedBlob("info", {"payload": [1, 2]}))

        self.assertEqual((yield in_thread(blocking)), ["info", {"payload": [1, 2]}])

    @defer.inlineCallbacks
    def test_compression(self):
        patch_config(self, COMPRESSION=True)
        self.assertEqual((yield call(self.uri, "add", "x" * 5000, "y")), "x" * 5000 + "y")

    @defer.inlineCallbacks
    def test_every_default_serializer_and_reply_in_kind(self):
        for name in ("serpent", "json", "marshal"):
            def blocking(name=name):
                with Pyro4.Proxy(self.uri) as proxy:
                    proxy._pyroSerializer = name
                    return proxy.add([1], [2])

            self.assertEqual((yield in_thread(blocking)), [1, 2], name)

    @defer.inlineCallbacks
    def test_peer_address_is_the_clients(self):
        host, port = yield call(self.uri, "peer")
        self.assertEqual(host, "127.0.0.1")
        self.assertNotEqual(port, self.factory.ports[0].getHost().port)

    @defer.inlineCallbacks
    def test_unregister(self):
        self.factory.unregister("calc")
        self.assertNotIn("calc", self.factory.objectsById)
        with self.assertRaises(errors.CommunicationError):
            yield call(self.uri, "add", 1, 2)


class SerializerPolicyTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_pickle_refused_by_default(self):
        factory = serve(self)
        uri = factory.register(Calculator(), "calc")

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroSerializer = "pickle"
                return proxy.add(1, 2)

        with self.assertRaises(errors.CommunicationError) as caught:
            yield in_thread(blocking)
        self.assertIn("serializer that is not accepted: 4", str(caught.exception))

    @defer.inlineCallbacks
    def test_pickle_dill_msgpack_when_accepted(self):
        patch_config(self, SERIALIZERS_ACCEPTED={"pickle", "dill", "msgpack", "serpent"})
        factory = serve(self)  # accepted serializers are read when the factory is made
        uri = factory.register(Calculator(), "calc")
        for name in ("pickle", "dill", "msgpack"):
            def blocking(name=name):
                with Pyro4.Proxy(uri) as proxy:
                    proxy._pyroSerializer = name
                    return proxy.add(1, 2)

            self.assertEqual((yield in_thread(blocking)), 3, name)


class HandshakeTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_handshake_value_travels_and_exception_denies(self):
        class Gatekeeper(Pyro4ProtocolFactory):
            def validateHandshake(self, conn, data):
                if data != "let me in":
                    raise ValueError("go away")
                return {"welcome": conn.sock.getpeername()[0]}

        factory = serve(self, Gatekeeper())
        uri = factory.register(Calculator(), "calc")
        received = []

        class Polite(Pyro4.Proxy):
            def _pyroValidateHandshake(self, response):
                received.append(response)

        def blocking(handshake):
            with Polite(uri) as proxy:
                proxy._pyroHandshake = handshake
                return proxy.add(1, 2)

        self.assertEqual((yield in_thread(blocking, "let me in")), 3)
        self.assertEqual(received, [{"welcome": "127.0.0.1"}])
        with self.assertRaises(errors.CommunicationError) as caught:
            yield in_thread(blocking, "hi")
        self.assertIn("rejected: go away", str(caught.exception))

    @defer.inlineCallbacks
    def test_asynchronous_validate_handshake(self):
        class SlowGate(Pyro4ProtocolFactory):
            async def validateHandshake(self, conn, data):
                yield_ = task.deferLater(reactor, 0, lambda: data == "ok")
                if not await yield_:
                    raise PermissionError("denied later")
                return "welcome"

        factory = serve(self, SlowGate())
        uri = factory.register(Calculator(), "calc")

        def blocking(handshake):
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroHandshake = handshake
                return proxy.add(2, 2)

        self.assertEqual((yield in_thread(blocking, "ok")), 4)
        with self.assertRaises(errors.CommunicationError) as caught:
            yield in_thread(blocking, "no")
        self.assertIn("denied later", str(caught.exception))

    @defer.inlineCallbacks
    def test_client_disconnect_only_after_handshake(self):
        disconnects = []
        lost = defer.Deferred()

        class Watcher(Pyro4ProtocolFactory):
            def validateHandshake(self, conn, data):
                if data == "bad":
                    raise ValueError("no")
                return "hello"

            def clientDisconnect(self, conn):
                disconnects.append(conn.objectId)
                lost.callback(None)

        factory = serve(self, Watcher())
        uri = factory.register(Calculator(), "calc")

        def refused():
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroHandshake = "bad"
                try:
                    proxy._pyroBind()
                except errors.CommunicationError:
                    return "refused"

        self.assertEqual((yield in_thread(refused)), "refused")
        yield call(uri, "add", 1, 1)
        yield lost
        self.assertEqual(disconnects, ["calc"])

    @defer.inlineCallbacks
    def test_hmac_keys(self):
        factory = serve(self)
        factory._pyroHmacKey = "secret"  # set after construction, str converted like Pyro4
        uri = factory.register(Calculator(), "calc")

        def blocking(key):
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroHmacKey = key
                return proxy.add(1, 2)

        self.assertEqual((yield in_thread(blocking, b"secret")), 3)
        for wrong in (b"wrong", None):
            with self.assertRaises((errors.CommunicationError, errors.SecurityError)):
                yield in_thread(blocking, wrong)
        self.assertEqual((yield in_thread(blocking, b"secret")), 3)  # still serving


@Pyro4.behavior(instance_mode="session")
@Pyro4.expose
class SessionCounter:
    created = 0

    def __init__(self):
        SessionCounter.created += 1
        self.count = 0

    def increment(self):
        self.count += 1
        return self.count


class InstanceModeTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_single_session_percall(self):
        factory = serve(self)

        def make(mode, creator=None):
            @Pyro4.behavior(instance_mode=mode, instance_creator=creator)
            @Pyro4.expose
            class Counter:
                def __init__(self):
                    self.count = 0

                def increment(self):
                    self.count += 1
                    return self.count

            return factory.register(Counter)

        uris = {mode: make(mode) for mode in ("single", "session", "percall")}

        def blocking(uri):
            counts = []
            for _ in range(2):
                with Pyro4.Proxy(uri) as proxy:
                    counts += [proxy.increment(), proxy.increment()]
            return counts

        self.assertEqual((yield in_thread(blocking, uris["single"])), [1, 2, 3, 4])
        self.assertEqual((yield in_thread(blocking, uris["session"])), [1, 2, 1, 2])
        self.assertEqual((yield in_thread(blocking, uris["percall"])), [1, 1, 1, 1])

    @defer.inlineCallbacks
    def test_instance_creator_and_class_registration(self):
        factory = serve(self)
        made = []

        def creator(cls):
            made.append(cls)
            return cls()

        SessionCounter._pyroInstancing = ("session", creator)
        self.addCleanup(delattr, SessionCounter, "_pyroInstancing")
        uri = factory.register(SessionCounter)
        self.addCleanup(factory.unregister, SessionCounter)
        self.assertEqual(SessionCounter._pyroId, uri.object)  # set on the class, like Pyro4
        self.assertIs(SessionCounter._pyroDaemon, factory)
        self.assertEqual((yield call(uri, "increment")), 1)
        self.assertEqual(made, [SessionCounter])


@Pyro4.expose
class Registry:
    def __init__(self, factory):
        self.factory = factory

    def make(self):
        child = Calculator()
        self.factory.register(child)
        return child


class AutoproxyTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_registered_objects_travel_as_proxies(self):
        factory = serve(self)
        uri = factory.register(Registry(factory), "registry")

        def blocking():
            with Pyro4.Proxy(uri) as registry:
                child = registry.make()
                with child:
                    return type(child).__name__, child.add(5, 5)

        self.assertEqual((yield in_thread(blocking)), ("Proxy", 10))

    def test_proxy_for_and_uri_for(self):
        factory = Pyro4ProtocolFactory()
        factory.setAddress("::1", 1234)
        calc = Calculator()
        factory.register(calc, "calc")
        self.assertEqual(str(factory.uriFor(calc)), "PYRO:calc@[::1]:1234")
        proxy = factory.proxyFor("calc")
        self.assertIn("add", proxy._pyroMethods)
        factory.setUnixAddress("/tmp/pyro.sock")
        self.assertEqual(str(factory.uriFor("calc")), "PYRO:calc@./u:/tmp/pyro.sock")

    def test_register_rules(self):
        factory = Pyro4ProtocolFactory()
        factory.setAddress("127.0.0.1", 1)
        calc = Calculator()
        factory.register(calc, "calc")
        with self.assertRaises(errors.DaemonError):
            factory.register(calc)
        with self.assertRaises(errors.DaemonError):
            factory.register(Calculator(), "calc")
        factory.register(Calculator(), "calc", force=True)

    def test_no_address_is_a_clear_error(self):
        with self.assertRaises(errors.DaemonError) as caught:
            Pyro4ProtocolFactory().register(Calculator())
        self.assertIn("setAddress", str(caught.exception))


@Pyro4.expose
class Gathering:
    """Each call waits until ``size`` calls are in progress at once: a deadlock if serialised."""

    def __init__(self, size):
        self.size = size
        self.waiting: list[defer.Deferred] = []

    def arrive(self, i):
        d = defer.Deferred()
        self.waiting.append(d)
        if len(self.waiting) == self.size:
            for waiter in self.waiting:
                waiter.callback(None)
        return d.addCallback(lambda _: i)

    async def arrive_async(self, i):
        return await self.arrive(i)

    @Pyro4.oneway
    async def park(self):
        self.parked = True
        await defer.Deferred()  # never fires: a oneway owes nothing, and holds nothing up

    def hello(self):
        return "next"


class AsynchronousServantTest(unittest.TestCase):
    @defer.inlineCallbacks
    def _gather(self, method, size):
        reactor.suggestThreadPoolSize(size + 2)
        self.addCleanup(reactor.suggestThreadPoolSize, 10)
        factory = serve(self)
        uri = factory.register(Gathering(size), "gathering")
        results = yield defer.gatherResults([call(uri, method, i) for i in range(size)])
        self.assertEqual(sorted(results), list(range(size)))

    def test_deferred_servants_run_concurrently(self):
        return self._gather("arrive", 12)

    def test_coroutine_servants_run_concurrently(self):
        return self._gather("arrive_async", 12)

    @defer.inlineCallbacks
    def test_oneway_returning_a_deferred_holds_nothing_up(self):
        factory = serve(self)
        uri = factory.register(Gathering(2), "gathering")

        gathering = factory.objectsById["gathering"]

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                proxy.park()
                return proxy.hello()

        self.assertEqual((yield in_thread(blocking)), "next")
        self.assertTrue(gathering.parked)

    @defer.inlineCallbacks
    def test_blocking_oneway_runs_in_the_reactors_pool_without_a_factory_pool(self):
        factory = serve(self)
        servant = Blocking(1)
        uri = factory.register(servant, "blocking")

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                proxy.hold()  # blocks a worker thread until released
                try:
                    return proxy.quick()
                finally:
                    servant.oneway_release.set()

        self.assertEqual((yield in_thread(blocking)), "quick")


@Pyro4.expose
class Blocking:
    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=30)
        self.threads = set()
        self.oneway_release = threading.Event()

    def meet(self, i):
        self.threads.add(threading.current_thread().name)
        self.barrier.wait()  # only returns when all parties block at once: needs threads
        return i

    @Pyro4.oneway
    def hold(self):
        self.oneway_release.wait(30)

    def quick(self):
        return "quick"


class Opening:
    """A session servant whose ``__init__`` blocks until the test opens ``gate`` (a database
    connection being opened, say)."""

    def __init__(self, entered: threading.Event, gate: threading.Event,
                 created_in: list[tuple[str, bool]]) -> None:
        created_in.append((threading.current_thread().name, isInIOThread()))
        entered.set()
        self.opened = gate.wait(10)
        if not self.opened:
            raise RuntimeError("the gate never opened")

    @Pyro4.expose
    def ready(self) -> bool:
        return self.opened


def opening_class(**behaviour: Any) -> tuple[type, threading.Event, threading.Event,
                                             list[tuple[str, bool]]]:
    """A fresh exposed ``Opening`` subclass with its own events, for one test."""
    entered, gate, created_in = threading.Event(), threading.Event(), []

    @Pyro4.behavior(**behaviour)
    class Servant(Opening):
        def __init__(self) -> None:
            super().__init__(entered, gate, created_in)

    return Servant, entered, gate, created_in


class ThreadPoolTest(unittest.TestCase):
    def setUp(self):
        self.pool = ThreadPool(minthreads=0, maxthreads=8, name="servants")
        self.pool.start()
        self.addCleanup(self.pool.stop)

    @defer.inlineCallbacks
    def test_blocking_servants_run_in_the_pool(self):
        reactor.suggestThreadPoolSize(10)
        factory = serve(self, threadpool=self.pool)
        servant = Blocking(6)
        uri = factory.register(servant, "blocking")
        results = yield defer.gatherResults([call(uri, "meet", i) for i in range(6)])
        self.assertEqual(sorted(results), list(range(6)))
        self.assertTrue(all("servants" in name for name in servant.threads), servant.threads)

    @defer.inlineCallbacks
    def test_blocking_oneway_does_not_stall_the_connection(self):
        factory = serve(self, threadpool=self.pool)
        servant = Blocking(1)
        uri = factory.register(servant, "blocking")

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                proxy.hold()
                try:
                    return proxy.quick()
                finally:
                    servant.oneway_release.set()

        self.assertEqual((yield in_thread(blocking)), "quick")


    @defer.inlineCallbacks
    def test_a_pool_servant_that_closes_its_callers_connection(self):
        """``current_context.client.close()`` from a pool thread: the hang-up happens in the
        reactor thread, before the outcome comes back; no reply, nothing queued served."""
        from pyro.client import DeferredProxy

        factory = serve(self, threadpool=self.pool)
        ran = []

        @Pyro4.expose
        class Closing:
            def hang_up(self):
                Pyro4.current_context.client.close()
                return "never seen"

            def note(self, value):
                ran.append(value)
                return value

        uri = factory.register(Closing())
        proxy = DeferredProxy(uri, max_connections=1)
        self.addCleanup(proxy.close)
        yield proxy.connect()
        for pending in (proxy.hang_up(), proxy.note("behind")):  # pipelined, one connection
            yield self.assertFailure(pending, Pyro4.errors.ConnectionClosedError)
        self.assertEqual(ran, [])
        self.assertEqual((yield proxy.note("after")), "after")  # a new connection

    @defer.inlineCallbacks
    def test_servant_instances_are_created_in_the_pool(self):
        """A blocking ``__init__`` of a session (or percall, single) servant runs in the pool,
        as in Pyro4's thread server: the reactor serves others while it blocks."""
        for mode in ("session", "percall", "single"):
            factory = serve(self, threadpool=self.pool)
            servant, entered, gate, created_in = opening_class(instance_mode=mode)
            uri = factory.register(servant)
            quick = factory.register(Calculator())
            first = call(uri, "ready")
            yield in_thread(entered.wait, 10)
            self.assertEqual((yield call(quick, "add", 1, 2)), 3)  # while __init__ blocks
            gate.set()
            self.assertIs((yield first), True)
            ((thread, in_reactor),) = created_in
            self.assertIn("servants", thread, mode)
            self.assertFalse(in_reactor, mode)

    @defer.inlineCallbacks
    def test_in_reactor_classes_are_created_in_the_reactor(self):
        from pyro.dispatch import in_reactor

        factory = serve(self, threadpool=self.pool)
        servant, _, gate, created_in = opening_class(instance_mode="session")
        gate.set()  # (it must not block: the reactor thread runs it)
        uri = factory.register(in_reactor(servant))
        self.assertIs((yield call(uri, "ready")), True)
        self.assertEqual([in_reactor for _, in_reactor in created_in], [True])

    @defer.inlineCallbacks
    def test_an_instance_that_cannot_be_created_fails_the_call_only(self):
        factory = serve(self, threadpool=self.pool)

        @Pyro4.behavior(instance_mode="percall")
        @Pyro4.expose
        class Broken:
            def __init__(self):
                raise ValueError("no database today")

            def ready(self):
                return True

        uri = factory.register(Broken)

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                try:
                    proxy.ready()
                except ValueError as error:
                    return str(error), "".join(Pyro4.util.getPyroTraceback())
                raise AssertionError("no error")

        message, remote = yield in_thread(blocking)
        self.assertEqual(message, "no database today")
        self.assertIn("no database today", remote)
        self.assertEqual((yield call(factory.register(Calculator()), "add", 2, 2)), 4)


class NameServerOnOurFactoryTest(unittest.TestCase):
    """Pyro4's own ``NameServer`` object is just a servant: served by our factory
    (``pyro.nameserver.register_name_server``), it is a name server that Pyro4 clients
    (``locateNS``, ``PYRONAME:``, ``PYROMETA:``) and our native client use as they would
    Pyro4's ``NameServerDaemon``. (Broadcast lookups: tests/test_nameserver.py.)"""

    @defer.inlineCallbacks
    def test_pyro4_clients_and_ours_use_it(self):
        from pyro.client import DeferredProxy, resolve
        from pyro.nameserver import register_name_server

        factory = serve(self)
        _, ns_uri = register_name_server(factory)
        thing_uri = factory.register(Calculator())
        host, port = ns_uri.host, ns_uri.port

        def blocking():
            ns = Pyro4.locateNS(host, port)
            ns.register("example.calc", thing_uri, metadata={"kind:calculator"})
            listed = ns.list(prefix="example.")
            found = ns.lookup("example.calc", return_metadata=True)
            with Pyro4.Proxy(f"PYRONAME:example.calc@{host}:{port}") as by_name:
                named = by_name.add(1, 2)
            with Pyro4.Proxy(f"PYROMETA:kind:calculator@{host}:{port}") as by_meta:
                meta = by_meta.add(3, 4)
            ns._pyroRelease()
            return listed, found, named, meta

        listed, (uri, metadata), named, meta = yield in_thread(blocking)
        self.assertEqual(listed, {"example.calc": str(thing_uri)})
        self.assertEqual((str(uri), metadata), (str(thing_uri), ["kind:calculator"]))  # as Pyro4
        self.assertEqual((named, meta), (3, 7))
        # the native client resolves through it too, without a thread
        self.assertEqual(str((yield resolve(f"PYRONAME:example.calc@{host}:{port}"))),
                         str(thing_uri))
        proxy = DeferredProxy(f"PYRONAME:example.calc@{host}:{port}")
        self.addCleanup(proxy.close)
        self.assertEqual((yield proxy.add(5, 6)), 11)


class OriginalReadmeTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_original_readme_example_runs_as_written(self):
        from Pyro4.socketutil import getInterfaceAddress

        import pyro.protocol

        Foo = Calculator
        factory = pyro.protocol.Pyro4ClientFactory()
        tcp_port = pyro.protocol.reactor.listenTCP(0, factory)  # the README says 5555
        self.addCleanup(factory.close)
        self.addCleanup(tcp_port.stopListening)
        try:
            host = getInterfaceAddress("8.8.8.8")  # a UDP connect(): no packet is sent
        except OSError as exc:
            raise unittest.SkipTest("this machine has no default route: %s" % exc) from exc
        port = tcp_port.getHost().port
        factory.setAddress(host, port)
        fooUri = factory.register(Foo())
        self.assertEqual((fooUri.host, fooUri.port), (host, port))
        self.assertIs(pyro.protocol.Pyro4ServerFactory, pyro.protocol.Pyro4ProtocolFactory)
        # call it over loopback (the port listens on every interface)
        loopback = "PYRO:%s@127.0.0.1:%d" % (fooUri.object, port)
        self.assertEqual((yield call(loopback, "add", 2, 3)), 5)

    def test_importing_installs_no_reactor(self):
        import subprocess
        import sys

        code = ("import sys, pyro, pyro.protocol, pyro.wire, pyro.dispatch, pyro.proxy,"
                " pyro.client, pyro.nameserver;"
                "print('twisted.internet.reactor' in sys.modules)")
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout
        self.assertEqual(output.strip(), "False")


@Pyro4.expose
class AsyncStreams:
    def __init__(self):
        self.closed = False

    async def ticks(self, n):
        for i in range(n):
            await task.deferLater(reactor, 0, lambda: None)
            yield i

    async def endless(self):
        try:
            while True:
                await task.deferLater(reactor, 0, lambda: None)
                yield "tick"
        finally:
            self.closed = True


class AsyncStreamTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_async_generators_stream_to_a_plain_pyro4_client(self):
        factory = serve(self)
        servant = AsyncStreams()
        uri = factory.register(servant, "streams")
        lost = defer.Deferred()
        factory.clientDisconnect = lambda conn: lost.callback(None)

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                whole = list(proxy.ticks(4))
                endless = proxy.endless()
                first = [next(endless), next(endless)]
                endless.close()
                return whole, first

        self.assertEqual((yield in_thread(blocking)), ([0, 1, 2, 3], ["tick", "tick"]))
        yield lost
        self.assertEqual(factory.streaming_responses, {})
        self.assertTrue(servant.closed)

    @defer.inlineCallbacks
    def test_generators_run_in_the_factorys_pool(self):
        pool = ThreadPool(minthreads=0, maxthreads=2, name="streams")
        pool.start()
        self.addCleanup(pool.stop)
        factory = serve(self, threadpool=pool)

        @Pyro4.expose
        class ThreadNames:
            def names(self, n):
                for _ in range(n):
                    yield threading.current_thread().name

        uri = factory.register(ThreadNames(), "names")

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                return list(proxy.names(3))

        names = yield in_thread(blocking)
        self.assertEqual(len(names), 3)
        self.assertTrue(all("streams" in name for name in names), names)


class BackpressureTest(unittest.TestCase):
    def test_a_client_that_does_not_read_stops_being_served(self):
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        from ..support.scripted_peer import ScriptedPeer

        factory = Pyro4ProtocolFactory(reactor=task.Clock())
        factory.setAddress("127.0.0.1", 1)
        factory.register(Calculator(), "calc")
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertIs(transport.producer, protocol)
        peer = ScriptedPeer()
        protocol.dataReceived(peer.connect("calc"))
        peer.replies(transport)
        protocol.pauseProducing()  # what the transport does when its write buffer is full
        protocol.dataReceived(peer.invoke("calc", "add", 1, 2) + peer.invoke("calc", "add", 3, 4))
        self.assertEqual(peer.replies(transport), [])
        protocol.resumeProducing()
        self.assertEqual([peer.load(m) for m in peer.replies(transport)], [3, 7])


class Resource:
    def __init__(self):
        self.closed = defer.Deferred()

    def close(self):
        self.closed.callback("closed")


@Pyro4.expose
class ResourceOwner:
    def __init__(self):
        self.resources: list[Resource] = []

    def open(self):
        resource = Resource()
        self.resources.append(resource)
        Pyro4.current_context.track_resource(resource)
        return len(self.resources)


class TrackedResourceTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_tracked_resources_are_closed_when_the_client_goes(self):
        factory = serve(self)
        owner = ResourceOwner()
        uri = factory.register(owner, "owner")
        self.assertEqual((yield call(uri, "open")), 1)
        self.assertEqual((yield owner.resources[0].closed), "closed")


@Pyro4.expose
class Bulk:
    def blob(self, size):
        return "x" * size


class LargeReplyTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_replies_larger_than_the_socket_buffer_arrive_whole(self):
        factory = serve(self)
        uri = factory.register(Bulk(), "bulk")

        def blocking():
            with Pyro4.Proxy(uri) as proxy:
                return [len(proxy.blob(size)) for size in (8_000_000, 10, 3_000_000, 20)]

        self.assertEqual((yield in_thread(blocking)), [8_000_000, 10, 3_000_000, 20])
