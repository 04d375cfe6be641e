"""Pyro4ProtocolFactory serving real, unmodified ``Pyro5.api.Proxy`` clients over real sockets.

Each client runs in a thread (``in_thread``), as a Pyro5 proxy belongs to the thread that
made it; the reactor keeps serving meanwhile. The same factory, on the same port, serves
Pyro4 clients too (``MixedGenerationsTest``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import Pyro4
import Pyro4.errors
import Pyro5.api
import Pyro5.client
import Pyro5.errors
import Pyro5.server
from twisted.internet import defer, reactor, task
from twisted.python.threadable import isInIOThread
from twisted.trial import unittest

from pyro.protocol import Pyro4ProtocolFactory

from ..support.our_server import call, in_thread, serve

SERIALIZERS5 = ("serpent", "json", "marshal", "msgpack")


def proxy5(uri, serializer=None, cls=Pyro5.api.Proxy):
    proxy = cls(str(uri))
    proxy._pyroTimeout = 10
    if serializer:
        proxy._pyroSerializer = serializer
    return proxy


def call5(uri, method, *args, serializer=None, **kwargs):
    """One call with a fresh, real ``Pyro5.api.Proxy`` (closed afterwards), in a thread."""
    def blocking():
        with proxy5(uri, serializer) as proxy:
            return getattr(proxy, method)(*args, **kwargs)

    return in_thread(blocking)


def with_proxy5(uri, function, serializer=None, cls=Pyro5.api.Proxy):
    """``function(proxy)`` with a fresh Pyro5 proxy, in a thread; the proxy is closed after."""
    def blocking():
        with proxy5(uri, serializer, cls) as proxy:
            return function(proxy)

    return in_thread(blocking)


def _raise_in_thread(function):
    """The exception ``function()`` raises (in a thread) and its Pyro traceback lines."""
    def blocking():
        try:
            function()
        except Exception as exc:
            return exc, "".join(Pyro5.errors.get_pyro_traceback(type(exc), exc,
                                                                exc.__traceback__))
        raise AssertionError("no exception raised")

    return in_thread(blocking)


class Unserializable(Exception):
    def __init__(self):
        super().__init__("cannot travel")
        self.payload = threading.Lock()


@Pyro5.api.expose
class Calculator5:
    """A servant written for Pyro5: Pyro5's decorators and current_context."""

    def __init__(self):
        self._value = 1
        self.oneway_calls = []
        self.ran_private = False
        self.oneway_done = None  # a Deferred the test sets

    def add(self, a, b):
        return a + b

    def fail(self):
        raise ValueError("the servant failed")

    def fail_pyro4(self):
        raise Pyro4.errors.NamingError("a Pyro4 error, raised by Pyro4-era code")

    def fail_unserializable(self):
        raise Unserializable()

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new):
        self._value = new

    def _private(self):
        self.ran_private = True

    @Pyro5.api.oneway
    def remember(self, item):
        self.oneway_calls.append((item, isInIOThread()))
        if self.oneway_done is not None:
            reactor.callFromThread(self.oneway_done.callback, item)

    def context(self):
        ctx = Pyro5.api.current_context
        ctx.response_annotations["XTRA"] = b"extra"
        return {"corr": str(ctx.correlation_id), "annotations": {k: bytes(v).decode() for k, v in
                                                                 ctx.annotations.items()},
                "peer": list(ctx.client_sock_addr), "seq": ctx.seq,
                "pyro4_corr": str(Pyro4.current_context.correlation_id),
                "same_client": ctx.client is Pyro4.current_context.client}

    async def context_after_await(self, delay):
        before = Pyro5.api.current_context.correlation_id
        await task.deferLater(reactor, delay, lambda: None)
        return [str(before), str(Pyro5.api.current_context.correlation_id)]

    def blob(self, blob):
        return [blob.info, blob.deserialized()]

    def generator(self, n):
        yield from range(n)

    def iterator(self):
        return iter(["one", "two", "three"])

    async def agenerator(self, n):
        for i in range(n):
            await task.deferLater(reactor, 0, lambda: None)
            yield i * 10

    def deferred(self, value):
        return task.deferLater(reactor, 0.01, lambda: value)

    async def coroutine(self, value):
        await task.deferLater(reactor, 0.01, lambda: None)
        return value * 2


@Pyro4.expose
class Calculator4:
    """A servant written for Pyro4, served to Pyro5 clients all the same."""

    def add(self, a, b):
        return a + b

    def unexposed_for_pyro5(self):
        return "only with REQUIRE_EXPOSE=False, and only for Pyro4"

    def context(self):
        return [str(Pyro4.current_context.correlation_id), Pyro4.current_context.seq]


class PartlyExposed:
    @Pyro5.api.expose
    def exposed(self):
        return "exposed"

    def run(self):
        return "ran"


@Pyro5.api.expose
class Item:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


@Pyro5.api.expose
class Registry:
    def __init__(self, factory):
        self.factory = factory
        self.items = {}

    def make(self, name):
        item = Item(name)
        self.factory.register(item)
        self.items[name] = item
        return item

    def several(self):
        return list(self.items.values())


class RecordingFactory(Pyro4ProtocolFactory):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.handshakes = []
        self.gone: defer.DeferredQueue = defer.DeferredQueue()

    def validateHandshake(self, conn, data):
        self.handshakes.append((data, conn.codec.name))
        if data == "let me in":
            return {"welcome": conn.codec.name}
        if data == "go away":
            raise ValueError("you are not welcome")
        if data == "later":
            return task.deferLater(reactor, 0.01, lambda: "later then")
        return super().validateHandshake(conn, data)

    def clientDisconnect(self, conn):
        self.gone.put((conn.codec.name, conn.objectId))


class HandshakeProxy(Pyro5.api.Proxy):
    def __init__(self, uri, data):
        super().__init__(uri)
        self._pyroHandshake = data
        object.__setattr__(self, "response", None)  # (a Pyro5 proxy's own attribute)

    def _pyroValidateHandshake(self, response):
        object.__setattr__(self, "response", response)


class Pyro5ClientsTest(unittest.TestCase):
    def setUp(self):
        self.factory = serve(self, RecordingFactory())
        self.calc = Calculator5()
        self.uri = self.factory.register(self.calc, "calc")

    @defer.inlineCallbacks
    def test_calls_in_every_pyro5_serializer(self):
        for serializer in SERIALIZERS5:
            self.assertEqual((yield call5(self.uri, "add", 1, 2, serializer=serializer)), 3)
            self.assertEqual((yield call5(self.uri, "add", "a", b="b",
                                          serializer=serializer)), "ab")

    @defer.inlineCallbacks
    def test_deferred_and_coroutine_servants(self):
        self.assertEqual((yield call5(self.uri, "deferred", "later")), "later")
        self.assertEqual((yield call5(self.uri, "coroutine", 21)), 42)

    @defer.inlineCallbacks
    def test_the_uri_is_the_same_text_for_both_generations(self):
        self.assertEqual(str(Pyro5.api.URI(str(self.uri))), str(self.uri))
        self.assertEqual((yield call(self.uri, "add", 2, 2)), 4)  # a Pyro4 client, same URI
        self.assertEqual((yield call5(self.uri, "add", 2, 3)), 5)

    @defer.inlineCallbacks
    def test_exception_with_remote_traceback(self):
        def failing():
            with proxy5(self.uri) as proxy:
                proxy.fail()

        exc, traceback = yield _raise_in_thread(failing)
        self.assertIsInstance(exc, ValueError)
        self.assertEqual(str(exc), "the servant failed")
        self.assertIn("Remote traceback", traceback)
        self.assertIn('raise ValueError("the servant failed")', traceback)
        self.assertNotIn("twisted", traceback.split("Remote traceback")[1].lower())

    @defer.inlineCallbacks
    def test_detailed_traceback_is_pyro5s_setting_for_pyro5_clients(self):
        def failing():
            with proxy5(self.uri) as proxy:
                proxy.fail()

        self.addCleanup(setattr, Pyro5.config, "DETAILED_TRACEBACK",
                        Pyro5.config.DETAILED_TRACEBACK)
        Pyro5.config.DETAILED_TRACEBACK = True
        _, traceback = yield _raise_in_thread(failing)
        self.assertIn("Extended stacktrace follows", traceback)
        Pyro5.config.DETAILED_TRACEBACK = False
        self.addCleanup(setattr, Pyro4.config, "DETAILED_TRACEBACK",
                        Pyro4.config.DETAILED_TRACEBACK)
        Pyro4.config.DETAILED_TRACEBACK = True  # (Pyro4's: for Pyro4 clients only)
        _, traceback = yield _raise_in_thread(failing)
        self.assertNotIn("Extended stacktrace follows", traceback)

    @defer.inlineCallbacks
    def test_pyro4_errors_reach_pyro5_clients_as_pyro5_errors(self):
        exc, _ = yield _raise_in_thread(lambda: self._call("fail_pyro4"))
        self.assertIs(type(exc), Pyro5.errors.NamingError)
        self.assertEqual(str(exc), "a Pyro4 error, raised by Pyro4-era code")
        exc, _ = yield _raise_in_thread(
            lambda: self._call("add", uri=str(self.uri).replace("calc", "nobody")))
        self.assertIsInstance(exc, Pyro5.errors.CommunicationError)  # refused at connect
        self.assertIn("unknown object", str(exc))

    def _call(self, method, *args, uri=None, serializer=None):
        with proxy5(uri or self.uri, serializer) as proxy:
            return getattr(proxy, method)(*args)

    @defer.inlineCallbacks
    def test_unknown_object_after_connecting_is_pyro5s_daemon_error(self):
        def unknown():
            with proxy5(self.uri) as proxy:
                proxy._pyroBind()
                proxy._pyroInvoke("add", (1, 2), {}, objectId="nobody")

        exc, _ = yield _raise_in_thread(unknown)
        self.assertIs(type(exc), Pyro5.errors.DaemonError)
        self.assertEqual(str(exc), "unknown object")

    @defer.inlineCallbacks
    def test_unserializable_exception_becomes_pyroerror_naming_it(self):
        exc, _ = yield _raise_in_thread(lambda: self._call("fail_unserializable"))
        self.assertIs(type(exc), Pyro5.errors.PyroError)
        self.assertIn("Error serializing exception", str(exc))

    @defer.inlineCallbacks
    def test_private_and_unexposed_names_are_refused_without_running(self):
        def private():
            with proxy5(self.uri) as proxy:
                proxy._pyroBind()
                proxy._pyroInvoke("_private", (), {})

        exc, _ = yield _raise_in_thread(private)
        self.assertIsInstance(exc, AttributeError)
        self.assertIn("private attribute", str(exc))
        self.assertFalse(self.calc.ran_private)
        plain = self.factory.register(PartlyExposed())

        def unexposed():
            with proxy5(plain) as proxy:
                proxy._pyroInvoke("run", (), {})

        exc, _ = yield _raise_in_thread(unexposed)
        self.assertIsInstance(exc, AttributeError)
        self.assertIn("unexposed", str(exc))

    @defer.inlineCallbacks
    def test_require_expose_off_is_pyro4s_setting_only(self):
        """Pyro5 has no REQUIRE_EXPOSE: turning Pyro4's off opens nothing to Pyro5 clients."""
        self.addCleanup(setattr, Pyro4.config, "REQUIRE_EXPOSE", Pyro4.config.REQUIRE_EXPOSE)
        Pyro4.config.REQUIRE_EXPOSE = False
        plain = self.factory.register(PartlyExposed())
        self.assertEqual((yield call(plain, "run")), "ran")  # Pyro4: everything public

        def unexposed():
            with proxy5(plain) as proxy:
                proxy._pyroInvoke("run", (), {})

        exc, _ = yield _raise_in_thread(unexposed)
        self.assertIsInstance(exc, AttributeError)

        def metadata(proxy):
            proxy._pyroBind()
            return sorted(proxy._pyroMethods)

        self.assertEqual((yield with_proxy5(plain, metadata)), ["exposed"])

    @defer.inlineCallbacks
    def test_attributes(self):
        def attributes(proxy):
            before = proxy.value
            proxy.value = 42
            return before, proxy.value, sorted(proxy._pyroAttrs)

        self.assertEqual((yield with_proxy5(self.uri, attributes)), (1, 42, ["value"]))
        self.assertEqual(self.calc.value, 42)

    @defer.inlineCallbacks
    def test_oneway(self):
        self.calc.oneway_done = defer.Deferred()

        def oneway(proxy):
            proxy._pyroBind()
            self.assertIn("remember", proxy._pyroOneway)
            return proxy.remember("item")  # returns at once: None

        self.assertIsNone((yield with_proxy5(self.uri, oneway)))
        self.assertEqual((yield self.calc.oneway_done), "item")
        # Pyro5 runs oneway calls in a thread of their own: so do we
        self.assertEqual(self.calc.oneway_calls, [("item", False)])

    @defer.inlineCallbacks
    def test_batch(self):
        def batch(proxy):
            calls = Pyro5.api.BatchProxy(proxy)
            calls.add(1, 2)
            calls.add(3, 4)
            calls.fail()
            calls.add(5, 6)
            results = calls()
            got = [next(results), next(results)]
            try:
                next(results)
            except ValueError as exc:
                got.append(("raised", str(exc), "".join(exc._pyroTraceback)))
            return got

        first, second, (raised, text, traceback) = yield with_proxy5(self.uri, batch)
        self.assertEqual((first, second, raised, text), (3, 7, "raised", "the servant failed"))
        self.assertIn("the servant failed", traceback)

    @defer.inlineCallbacks
    def test_batch_failing_with_a_pyro4_error(self):
        def batch(proxy):
            calls = Pyro5.api.BatchProxy(proxy)
            calls.fail_pyro4()
            results = calls()
            try:
                next(results)
            except Exception as exc:
                return type(exc)

        self.assertIs((yield with_proxy5(self.uri, batch)), Pyro5.errors.NamingError)

    @defer.inlineCallbacks
    def test_item_streams(self):
        def streams(proxy):
            return (list(proxy.generator(5)), list(proxy.iterator()),
                    list(proxy.agenerator(3)))

        generator, iterator, agenerator = yield with_proxy5(self.uri, streams)
        self.assertEqual(generator, [0, 1, 2, 3, 4])
        self.assertEqual(iterator, ["one", "two", "three"])
        self.assertEqual(agenerator, [0, 10, 20])
        self.assertEqual(self.factory.streams.responses, {})

    @defer.inlineCallbacks
    def test_closing_a_stream_early(self):
        def early(proxy):
            stream = proxy.generator(100)
            first = next(stream)
            opened = len(self.factory.streams.responses)
            stream.close()
            return first, opened

        self.assertEqual((yield with_proxy5(self.uri, early)), (0, 1))
        yield self.factory.gone.get()  # (close_stream is a oneway call: it ran before this)
        self.assertEqual(self.factory.streams.responses, {})  # closed, not lingering

    @defer.inlineCallbacks
    def test_streaming_off_in_pyro5s_config(self):
        self.addCleanup(setattr, Pyro5.config, "ITER_STREAMING", Pyro5.config.ITER_STREAMING)
        Pyro5.config.ITER_STREAMING = False
        exc, _ = yield _raise_in_thread(lambda: list(self._call("generator", 3)))
        self.assertIsInstance(exc, Pyro5.errors.PyroError)
        self.assertIn("not configured to allow streaming", str(exc))

    @defer.inlineCallbacks
    def test_blobs(self):
        # (not json: Pyro5's SerializedBlob.deserialized() unpacks json's call dict, a Pyro5
        # bug that its own daemon shows too: it gives "params")
        for serializer in ("serpent", "marshal", "msgpack"):
            def blob(proxy):
                return proxy.blob(Pyro5.api.SerializedBlob("info", [1, {"data": 2}]))

            self.assertEqual((yield with_proxy5(self.uri, blob, serializer)),
                             ["info", [1, {"data": 2}]])

    @defer.inlineCallbacks
    def test_current_context_correlation_annotations_and_address(self):
        corr = uuid.uuid4()

        def context():
            client_context = Pyro5.api.current_context  # (Pyro5's client API: this thread's)
            client_context.correlation_id = corr
            client_context.annotations = {"XYZZ": b"from the client"}
            try:
                with proxy5(self.uri) as proxy:
                    result = proxy.context()
                    local = list(proxy._pyroConnection.sock.getsockname())
                    response = {key: bytes(value) for key, value in
                                client_context.response_annotations.items()}
                    return result, local, response
            finally:
                client_context.correlation_id = None
                client_context.annotations = {}

        result, local, response = yield in_thread(context)
        self.assertEqual(result["corr"], str(corr))
        self.assertEqual(result["pyro4_corr"], str(corr))  # both contexts are filled
        self.assertTrue(result["same_client"])
        self.assertEqual(result["annotations"]["XYZZ"], "from the client")
        self.assertEqual(result["peer"], local)
        self.assertEqual(response["XTRA"], b"extra")
        self.assertNotIn("CORR", response)  # Pyro5: the correlation id is in the header

    @defer.inlineCallbacks
    def test_current_context_survives_await(self):
        corr = uuid.uuid4()

        def slow():
            Pyro5.api.current_context.correlation_id = corr
            try:
                return self._call("context_after_await", 0.05)
            finally:
                Pyro5.api.current_context.correlation_id = None

        other = call5(self.uri, "context_after_await", 0.01)  # interleaved in the reactor
        before, after = yield in_thread(slow)
        yield other
        self.assertEqual((before, after), (str(corr), str(corr)))

    @defer.inlineCallbacks
    def test_no_pyro5_context_is_left_in_the_reactor_thread(self):
        yield call5(self.uri, "context")
        self.assertIsNone(Pyro5.api.current_context.client)
        self.assertIsNone(Pyro4.current_context.client)

    @defer.inlineCallbacks
    def test_daemon_object(self):
        daemon_uri = "PYRO:Pyro.Daemon@" + self.factory.locationStr

        def daemon(proxy):
            return (proxy.ping(), sorted(proxy.registered()), proxy.info(),
                    proxy.get_metadata("calc"))

        ping, registered, info, metadata = yield with_proxy5(daemon_uri, daemon)
        self.assertIsNone(ping)
        self.assertEqual(registered, ["Pyro.Daemon", "calc"])
        self.assertIn("Pyro.Daemon bound on " + self.factory.locationStr, info)
        self.assertEqual(set(metadata["oneway"]), {"remember"})
        self.assertEqual(set(metadata["attrs"]), {"value"})
        self.assertIn("add", metadata["methods"])

    @defer.inlineCallbacks
    def test_autoproxy_gives_pyro5_proxies_to_pyro5_clients(self):
        registry = Registry(self.factory)
        uri = self.factory.register(registry, "registry")
        for serializer in SERIALIZERS5:
            def made(proxy, serializer=serializer):
                item = proxy.make("item-" + serializer)
                with item:
                    return type(item), item.get_name(), sorted(item._pyroMethods)

            kind, name, methods = yield with_proxy5(uri, made, serializer)
            self.assertIs(kind, Pyro5.client.Proxy)
            self.assertEqual(name, "item-" + serializer)
            self.assertEqual(methods, ["get_name"])

        def pyro4_client():
            with Pyro4.Proxy(uri) as proxy:
                items = proxy.several()
                return [type(item) for item in items], items[0].get_name()

        kinds, name = yield in_thread(pyro4_client)
        self.assertEqual(set(kinds), {Pyro4.Proxy})  # the same objects, a Pyro4 client
        self.assertEqual(name, "item-serpent")

    def test_pyro5_proxy_for(self):
        proxy = self.factory.pyro5_proxy_for(self.calc)
        self.assertIsInstance(proxy, Pyro5.client.Proxy)
        self.assertEqual(str(proxy._pyroUri), str(self.uri))
        self.assertIn("add", proxy._pyroMethods)
        self.assertEqual(proxy._pyroOneway, {"remember"})
        proxy._pyroRelease()

    @defer.inlineCallbacks
    def test_pyro4_servants_for_pyro5_clients(self):
        uri = self.factory.register(Calculator4())
        self.assertEqual((yield call5(uri, "add", 2, 5)), 7)
        corr = uuid.uuid4()

        def context():
            Pyro5.api.current_context.correlation_id = corr
            try:
                return self._call("context", uri=uri)
            finally:
                Pyro5.api.current_context.correlation_id = None

        self.assertEqual((yield in_thread(context))[0], str(corr))

    @defer.inlineCallbacks
    def test_instance_modes_with_pyro5s_behavior(self):
        @Pyro5.api.behavior(instance_mode="session")
        @Pyro5.api.expose
        class Counter:
            def __init__(self):
                self.count = 0

            def next(self):
                self.count += 1
                return self.count

        uri = self.factory.register(Counter)

        def twice(proxy):
            return [proxy.next(), proxy.next()]

        self.assertEqual((yield with_proxy5(uri, twice)), [1, 2])
        self.assertEqual((yield with_proxy5(uri, twice)), [1, 2])  # a new session

    @defer.inlineCallbacks
    def test_ping_message(self):
        def ping(proxy):
            proxy._pyroBind()
            proxy._pyroConnection  # noqa: B018 -- connected
            Pyro5.client.protocol.SendingMessage.ping(proxy._pyroConnection)
            return "pong"

        self.assertEqual((yield with_proxy5(self.uri, ping)), "pong")

    @defer.inlineCallbacks
    def test_message_size_limit(self):
        self.factory.max_message_size = 2000
        exc, _ = yield _raise_in_thread(lambda: self._call("add", "x" * 5000, "y"))
        self.assertIsInstance(exc, Pyro5.errors.CommunicationError)
        self.factory.max_message_size = None
        self.addCleanup(setattr, Pyro5.config, "MAX_MESSAGE_SIZE", Pyro5.config.MAX_MESSAGE_SIZE)
        Pyro5.config.MAX_MESSAGE_SIZE = 3000  # Pyro5's own limit, read per message
        exc, _ = yield _raise_in_thread(lambda: self._call("add", "x" * 5000, "y"))
        self.assertIsInstance(exc, Pyro5.errors.CommunicationError)
        Pyro5.config.MAX_MESSAGE_SIZE = 1024 * 1024 * 1024
        self.assertEqual((yield call5(self.uri, "add", "x" * 5000, "y")), "x" * 5000 + "y")


class StreamContext5:
    """A generator servant that reads Pyro5's current_context while producing items."""

    @Pyro5.api.expose
    def contexts(self, n):
        for _ in range(n):
            ctx = Pyro5.api.current_context
            yield [str(ctx.correlation_id), ctx.client is not None]


class ThreadPoolStreamContextTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_stream_items_see_pyro5s_context_in_the_thread_pool(self):
        """With a thread pool, the items of a Pyro5 client's stream are produced in the
        pool, with ``Pyro5.api.current_context`` filled for the call that reads them, as
        Pyro5's daemon has it (it was empty there: only Pyro4's context was installed)."""
        factory = serve(self, threads=2)
        uri = factory.register(StreamContext5(), "streams")
        corr = uuid.uuid4()

        def read():
            Pyro5.api.current_context.correlation_id = corr
            try:
                with proxy5(uri) as proxy:
                    return list(proxy.contexts(2))
            finally:
                Pyro5.api.current_context.correlation_id = None

        self.assertEqual((yield in_thread(read)), [[str(corr), True]] * 2)


class AsyncStreamContext:
    """An async generator servant that reads both generations' current_context after an
    await, while other calls run in the reactor meanwhile."""

    @Pyro4.expose
    async def contexts(self, n):
        for _ in range(n):
            await task.deferLater(reactor, 0.01, lambda: None)
            yield [str(Pyro4.current_context.correlation_id),
                   str(Pyro5.api.current_context.correlation_id)]


class AsyncStreamContextTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_async_stream_items_see_their_callers_context_after_an_await(self):
        """Each item of an async generator is produced with the reading call's context
        installed at every step, on any reactor (it was the context of whichever call ran
        last in the reactor thread): a Pyro4 and a Pyro5 client read at the same time."""
        uri = serve(self).register(AsyncStreamContext(), "streams")
        corr4, corr5 = uuid.uuid4(), uuid.uuid4()

        def read4():
            Pyro4.current_context.correlation_id = corr4
            try:
                with Pyro4.Proxy(uri) as proxy:
                    return [item[0] for item in proxy.contexts(5)]
            finally:
                Pyro4.current_context.correlation_id = None

        def read5():
            Pyro5.api.current_context.correlation_id = corr5
            try:
                with proxy5(uri) as proxy:
                    return [item[1] for item in proxy.contexts(5)]
            finally:
                Pyro5.api.current_context.correlation_id = None

        got4, got5 = yield defer.gatherResults([in_thread(read4), in_thread(read5)])
        self.assertEqual((got4, got5), ([str(corr4)] * 5, [str(corr5)] * 5))


class SerializerAllowListTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_pyro4s_allow_list_is_for_pyro4_clients(self):
        """Pyro5 has no SERIALIZERS_ACCEPTED (its serializers cannot run code): Pyro5 clients
        may use all of them, whatever Pyro4's list (read when the factory is made) says."""
        from ..support.config import patch_config

        patch_config(self, SERIALIZERS_ACCEPTED={"serpent"})
        factory = serve(self)
        uri = factory.register(Calculator5(), "calc")
        for serializer in SERIALIZERS5:
            self.assertEqual((yield call5(uri, "add", 1, 2, serializer=serializer)), 3)

        def pyro4_json():
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroSerializer = "json"
                proxy.add(1, 2)

        yield self.assertFailure(in_thread(pyro4_json), Pyro4.errors.CommunicationError)


class HandshakeTest(unittest.TestCase):
    def setUp(self):
        self.factory = serve(self, RecordingFactory())
        self.uri = self.factory.register(Calculator5(), "calc")

    @defer.inlineCallbacks
    def test_handshake_value_travels_and_exception_denies(self):
        def accepted():
            with proxy5(self.uri, cls=lambda uri: HandshakeProxy(uri, "let me in")) as proxy:
                proxy._pyroTimeout = 10
                proxy._pyroBind()
                return proxy.response

        self.assertEqual((yield in_thread(accepted)), {"welcome": "Pyro5"})

        def denied():
            with HandshakeProxy(str(self.uri), "go away") as proxy:
                proxy._pyroTimeout = 10
                proxy._pyroBind()

        exc, _ = yield _raise_in_thread(denied)
        self.assertIsInstance(exc, Pyro5.errors.CommunicationError)
        self.assertIn("you are not welcome", str(exc))

        def later():
            with HandshakeProxy(str(self.uri), "later") as proxy:
                proxy._pyroTimeout = 10
                proxy._pyroBind()
                return proxy.response

        self.assertEqual((yield in_thread(later)), "later then")
        self.assertEqual([codec for _, codec in self.factory.handshakes], ["Pyro5"] * 3)

    @defer.inlineCallbacks
    def test_client_disconnect(self):
        yield call5(self.uri, "add", 1, 1)
        self.assertEqual((yield self.factory.gone.get()), ("Pyro5", "calc"))
        yield call(self.uri, "add", 1, 1)
        self.assertEqual((yield self.factory.gone.get()), ("Pyro4", "calc"))


class RefusalTest(unittest.TestCase):
    @defer.inlineCallbacks
    def test_pyro4_only(self):
        factory = serve(self, pyro_versions=(4,))
        uri = factory.register(Calculator5(), "calc")
        exc, _ = yield _raise_in_thread(lambda: proxy5(uri)._pyroBind())
        # what a Pyro4 daemon answers a Pyro5 client
        self.assertIsInstance(exc, Pyro5.errors.ProtocolError)
        self.assertEqual(str(exc), "invalid protocol version: 48")
        self.assertEqual((yield call(uri, "add", 1, 2)), 3)

    @defer.inlineCallbacks
    def test_pyro5_only(self):
        factory = serve(self, pyro_versions=(5,))
        uri = factory.register(Calculator5(), "calc")

        def pyro4():
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroBind()

        exc = yield self.assertFailure(in_thread(pyro4), Pyro4.errors.ProtocolError)
        # what a Pyro5 daemon answers a Pyro4 client (in a Pyro5 frame, which a Pyro4
        # client cannot read: it names the version it found)
        self.assertEqual(str(exc), "invalid data or unsupported protocol version")
        self.assertEqual((yield call5(uri, "add", 1, 2)), 3)

    @defer.inlineCallbacks
    def test_hmac_key_refuses_pyro5_clients(self):
        factory = serve(self, hmac_key=b"secret")
        uri = factory.register(Calculator5(), "calc")
        exc, _ = yield _raise_in_thread(lambda: proxy5(uri)._pyroBind())
        self.assertIsInstance(exc, Pyro5.errors.CommunicationError)
        self.assertIn("HMAC", str(exc))

    def test_pyro_versions_are_checked(self):
        for wrong in ((), (3,), (4, 6), 5, "45"):
            self.assertRaises(ValueError, Pyro4ProtocolFactory, pyro_versions=wrong)
        self.assertEqual(Pyro4ProtocolFactory(pyro_versions=[5, 4]).pyro_versions & {4, 5},
                         {4, 5})

    def test_without_pyro5_installed(self):
        """Pyro5 hidden in a subprocess: a Pyro5 client is refused as a Pyro4 daemon refuses
        it, with one log line saying why; naming 5 is an ImportError."""
        out = self._refused_in_a_subprocess("hidden", {})
        self.assertIn("explicit: GenerationUnavailable: Pyro5 is not installed", out)  # (an ImportError)
        self.assertIn("Pyro5 is not installed", self._log_line(out))

    def test_when_pyro5_refuses_the_environment(self):
        """Pyro5 reads every PYRO_* environment variable when imported and raises ValueError
        for those it does not know, Pyro4's among them: Pyro5 clients are refused (with the
        reason in the log), Pyro4 clients are served as ever."""
        out = self._refused_in_a_subprocess("env", {"PYRO_ONEWAY_THREADED": "true"})
        self.assertIn("explicit: GenerationUnavailable: Pyro5 cannot be imported: invalid Pyro "
                      "environment config variable: PYRO_ONEWAY_THREADED", out)
        self.assertIn("Pyro5 cannot be imported", self._log_line(out))
        self.assertIn("PYRO_ONEWAY_THREADED", self._log_line(out))
        self.assertIn("pyro4 call: 3", out)

    def _log_line(self, out):
        log = [line for line in out.splitlines() if line.startswith("log:")][0]
        self.assertEqual(log.count("closing connection"), 1)
        return log

    def _refused_in_a_subprocess(self, mode, environment):
        script = r"""
import socket, sys, threading
if sys.argv[2] == "hidden":
    sys.modules["Pyro5"] = None  # as if it were not installed
import Pyro4
from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from pyro.protocol import Pyro4ProtocolFactory
lines = []
globalLogBeginner.beginLoggingTo([lambda event: lines.append(event)], redirectStandardIO=False)
try:
    Pyro4ProtocolFactory(pyro_versions=(4, 5))
except Exception as exc:
    print("explicit: %s: %s" % (type(exc).__name__, exc))
factory = Pyro4ProtocolFactory()
port = reactor.listenTCP(0, factory, interface="127.0.0.1")
factory.setAddress("127.0.0.1", port.getHost().port)

@Pyro4.expose
class Calc:
    def add(self, a, b):
        return a + b

uri = factory.register(Calc(), "calc")
connect = bytes.fromhex(sys.argv[1])
def client():
    sock = socket.create_connection(("127.0.0.1", port.getHost().port))
    sock.sendall(connect)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    print("reply:", data[:6].hex(), data[24:].decode("latin-1")[-44:])
    with Pyro4.Proxy(uri) as proxy:
        print("pyro4 call:", proxy.add(1, 2))
    reactor.callFromThread(reactor.stop)
threading.Thread(target=client).start()
reactor.run()
from twisted.logger import formatEvent
print("log:", [formatEvent(e) for e in lines if e.get("log_namespace") == "pyro.protocol"])
"""
        connect = _pyro5_connect_bytes()
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("PYRO_")}
        env.update(environment, PYTHONPATH=os.getcwd())
        done = subprocess.run([sys.executable, "-c", script, connect.hex(), mode], env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        out = done.stdout
        self.assertIn("reply: 5059524f" + "0030", out)  # a Pyro4 frame: b"PYRO", version 48
        self.assertIn("invalid data or unsupported protocol version", out)
        self.assertIn("pyro4 call: 3", out)
        return out


def _pyro5_connect_bytes():
    """The CONNECT a real Pyro5 proxy sends (recorded from a socket)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = []

    def accept():
        conn, _ = server.accept()
        conn.settimeout(2)
        data = b""
        try:
            while len(data) < 40 or len(data) < 40 + int.from_bytes(data[12:16], "big") + \
                    int.from_bytes(data[16:20], "big"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            received.append(data)
            conn.close()

    thread = threading.Thread(target=accept)
    thread.start()
    proxy = Pyro5.api.Proxy("PYRO:calc@127.0.0.1:%d" % server.getsockname()[1])
    proxy._pyroTimeout = 2
    try:
        proxy._pyroBind()
    except Exception:
        pass
    thread.join()
    server.close()
    return received[0]


class MixedGenerationsTest(unittest.TestCase):
    def setUp(self):
        reactor.suggestThreadPoolSize(30)
        self.factory = serve(self)
        self.uri = self.factory.register(Calculator5(), "calc")

    @defer.inlineCallbacks
    def test_both_generations_at_once_on_one_port(self):
        calls = []
        for i in range(10):
            calls.append(call(self.uri, "add", i, 1))
            calls.append(call5(self.uri, "add", i, 2))
        results = yield defer.gatherResults(calls)
        self.assertEqual(results, [value for i in range(10) for value in (i + 1, i + 2)])

    @defer.inlineCallbacks
    def test_connections_know_their_generation(self):
        def hold(proxy):
            proxy._pyroBind()
            return sorted(p.codec.name for p in self.factory.protocols)

        self.assertEqual((yield with_proxy5(self.uri, hold)), ["Pyro5"])

        def both():
            with Pyro4.Proxy(self.uri) as pyro4, proxy5(self.uri) as pyro5:
                pyro4._pyroBind()
                pyro5._pyroBind()
                return sorted(p.codec.name for p in self.factory.protocols)

        self.assertEqual((yield in_thread(both)), ["Pyro4", "Pyro5"])



@Pyro5.api.expose
class RaisesPyro5Errors:
    """A servant moved to Pyro5's API, still called by Pyro4 clients."""

    def lookup(self, name):
        raise Pyro5.errors.NamingError("unknown name: " + name)

    def add(self, a, b):
        return a + b


class Pyro5ErrorsForPyro4ClientsTest(unittest.TestCase):
    """A Pyro4 client cannot rebuild a ``Pyro5.errors`` class (its serializers refuse any
    ``Pyro5.*`` class: it got a SerializeError instead of the error): they travel to it as
    the ``Pyro4.errors`` exception of the same name and words, as Pyro4's travel to Pyro5
    clients as Pyro5's."""

    def setUp(self):
        self.factory = serve(self)
        self.uri = self.factory.register(RaisesPyro5Errors(), "servant")

    @defer.inlineCallbacks
    def test_a_call(self):
        def lookup():
            with Pyro4.Proxy(self.uri) as proxy:
                proxy.lookup("nothing")

        exc = yield self.assertFailure(in_thread(lookup), Pyro4.errors.NamingError)
        self.assertEqual(str(exc), "unknown name: nothing")
        self.assertIn("NamingError: unknown name: nothing",
                      "".join(exc._pyroTraceback))

    @defer.inlineCallbacks
    def test_a_batch(self):
        def batch():
            with Pyro4.Proxy(self.uri) as proxy:
                calls = Pyro4.batch(proxy)
                calls.add(1, 2)
                calls.lookup("nothing")
                results = calls()
                first = next(results)
                try:
                    next(results)
                except Exception as exc:
                    return first, exc

        first, exc = yield in_thread(batch)
        self.assertEqual(first, 3)
        self.assertIsInstance(exc, Pyro4.errors.NamingError)
        self.assertEqual(str(exc), "unknown name: nothing")
