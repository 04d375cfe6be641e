"""Pyro4 4.82's examples again, with their client side made by the native ``DeferredProxy``.

tests/interop/test_examples.py runs the examples' client code with a blocking ``Pyro4.Proxy`` in a
worker thread. Here the same examples' client logic is written for ``pyro.client`` (async
tests, every call a Deferred, in the reactor thread) and runs against the same four servers
(our factory in the reactor thread, our factory with a thread pool, Pyro4's thread and
multiplex daemons: the classes at the bottom take their settings from test_examples' own).
The servants, the daemons and the expected observations are test_examples' (imported, not
copied), so a test passing here shows that the native client sees what a ``Pyro4.Proxy``
sees: the same values, exception types and messages, remote tracebacks
(``Pyro4.util.getPyroTraceback``) and server-side effects.

Where the native client differs from ``Pyro4.Proxy``, by design or not (see also the
README's section on ``pyro.client``):

* Fixed: the ``_pyroResponseAnnotations(annotations, msgtype)`` hook did not exist (Pyro4
  calls it for each ``CONNECTOK`` and each reply with annotations; examples/callcontext
  overrides it). ``DeferredProxy`` now calls it the same way.
* Fixed: after a oneway call ``Pyro4.current_context.response_annotations`` still held the
  previous reply's annotations; Pyro4 leaves them empty ("should be empty because oneway!").
* Fixed: ``proxy.getattr(name)`` of a name the object exposes neither as attribute nor as
  method said "has no exposed attribute"; Pyro4's ``proxy.name`` says "has no exposed
  attribute or method" (``setattr`` keeps Pyro4's "has no exposed attribute").
* By design: names starting with ``_`` are never remote methods of a ``DeferredProxy``
  (``proxy.__dunder__()`` fails locally); ``proxy.call("__dunder__")`` calls them, and
  there is no public bypass of the metadata check (Pyro4's ``_pyroInvoke``).
* By design: an exhausted or closed item stream fails ``next()`` with
  ``StopAsyncIteration`` (Pyro4: ``StopIteration``, which cannot leave a coroutine).
* By design: ``batch(asynchronous=True)`` empties the batch, as every send does; Pyro4's
  asynchronous batch sends a copy and leaves the calls in the batch, so its next send
  repeats them.
* Message only: a refused handshake names the server ``127.0.0.1:PORT`` (Pyro4:
  ``('127.0.0.1', PORT)``); a call timeout says ``call timed out after 0.1 seconds``
  (Pyro4: ``receiving: timeout``). The exception types are Pyro4's.
* Fixed in the server: it used to leave the reactor thread's ``Pyro4.current_context`` as no
  call's after each handshake and call it handled there, so a correlation id that a native
  client in the same reactor had set in that thread was gone before the client's first call.
  Now ``pyro.context.CallContext.capture`` gives the thread back the client facts it had.

Adaptations: Pyro4's ``with Proxy(...)`` blocks become ``await proxy.close()`` (and every
proxy is closed by a cleanup as well); ``max_connections=1`` wherever the example relies on
one connection (sessions, sequence numbers, order). Waiting for an event a servant sets is
done in a worker thread (``in_thread``), never in the reactor thread, which may be the
servants' own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Awaitable
from typing import Any

import Pyro4
import Pyro4.constants
import Pyro4.core
import Pyro4.errors
import Pyro4.message
import Pyro4.test.echoserver
import Pyro4.util
import serpent
from twisted.internet import defer, threads
from twisted.trial import unittest

from pyro.client import DeferredProxy, ItemStream

from ..support.asynctest import async_test, failure_of
from ..support.config import patch_config
from ..support.our_server import in_thread
from . import test_examples as examples
from .test_examples import (
    BLOB_TIME,
    CONTEXT_CORRELATION,
    CONTEXT_HMAC,
    FOREVER,
    NUMBER_OF_LOOPS,
    SECOND,
    WAIT,
    AttributesThingy,
    BatchedThingy,
    BlobDispatcher,
    ContextDaemon,
    ContextEchoServer,
    CustomData,
    ExceptionsTestClass,
    HandshakeDaemon,
    HugeTestclass,
    OnewayServer,
    Person,
    Streamer,
    TimeoutServer,
    check_attributes,
    check_batchedcalls,
    check_blob_dispatch,
    check_callcontext,
    check_echoserver,
    check_exceptions,
    check_hugetransfer,
    check_instancemode,
    check_maxsize,
    check_oneway,
    check_streaming,
    check_usersession,
    check_warehouse,
    datasize,
    fill_batch_two,
    register_custom_data,
    release_listener_proxies,
    remote_frames,
    say,
    secret_code,
    serve_blob_listeners,
    serve_in_line,
    serve_instancemode,
    serve_timeout,
    serve_usersession,
    serve_warehouse,
    shown_annotations,
)

#: What a test class takes over from test_examples' class for the same server.
SERVER_SETTINGS = ("target", "threaded", "thread_per_connection", "oneway_batch_in_line",
                   "daemon_frames")


async def outcome(d: Awaitable[Any]) -> Any:
    """``("ok", result)`` or ``(exception type name, str(exception))``: what a call did."""
    try:
        return "ok", await d
    except Exception as exc:  # noqa: BLE001 -- the point is to report it
        return type(exc).__name__, str(exc)


def clear_context() -> None:
    """The reactor thread's call context, as no call's (the native client reads it)."""
    Pyro4.current_context.correlation_id = None
    Pyro4.current_context.annotations = {}
    Pyro4.current_context.response_annotations = {}


# ---------------------------------------------------------------------------------------------
# Native counterparts of the examples' client-side classes

class CustomAnnotationProxy(DeferredProxy):
    """examples/callcontext's proxy class: custom annotations, response annotations shown."""

    def __init__(self, uri: Any, responses: list[Any], **kwargs: Any):
        kwargs.setdefault("correlation_id", CONTEXT_CORRELATION)
        super().__init__(uri, hmac_key=CONTEXT_HMAC, max_connections=1, **kwargs)
        self.responses = responses

    def _pyroAnnotations(self) -> dict[str, bytes]:
        return {"XYZZ": b"Hello, I am a custom annotation from the proxy!"}

    def _pyroResponseAnnotations(self, annotations: dict[str, bytes], msgtype: int) -> None:
        self.responses.append((msgtype, shown_annotations(annotations)))


class CustomHandshakeProxy(DeferredProxy):
    """examples/handshake's proxy class: records the server's handshake response."""

    def __init__(self, uri: Any, received: list[Any], **kwargs: Any):
        super().__init__(uri, **kwargs)
        self.received = received

    def _pyroValidateHandshake(self, response: Any) -> None:
        self.received.append(response)


class UserProxy(DeferredProxy):
    """examples/usersession's proxy class: a USER annotation with every call."""

    def __init__(self, uri: Any, user: str = "user123", **kwargs: Any):
        kwargs.setdefault("max_connections", 1)  # one connection: one session
        super().__init__(uri, **kwargs)
        self.user = user

    def _pyroAnnotations(self) -> dict[str, bytes]:
        return {"USER": self.user.encode("utf-8")}


class NativePerson(Person):
    """examples/warehouse's visitor, calling the warehouse through a DeferredProxy."""

    async def visit(self, warehouse: DeferredProxy) -> None:  # type: ignore[override]
        await self.deposit(warehouse)
        await self.retrieve(warehouse)

    async def deposit(self, warehouse: DeferredProxy) -> None:  # type: ignore[override]
        self.saw.append(await warehouse.list_contents())
        item = self.input("Type a thing you want to store (or empty): ").strip()
        if item:
            await warehouse.store(self.name, item)

    async def retrieve(self, warehouse: DeferredProxy) -> None:  # type: ignore[override]
        self.saw.append(await warehouse.list_contents())
        item = self.input("Type something you want to take (or empty): ").strip()
        if item:
            await warehouse.take(self.name, item)


@Pyro4.expose
class OffReactorTimeoutServer(TimeoutServer):
    """examples/timeout's servant for our server in the reactor thread, where the native
    client runs too: the example's ``delay()`` (unchanged) runs in a worker thread, since
    blocking the reactor would also stop the client from timing out (and from releasing
    it). Across processes, as in the example, that question does not arise."""

    def delay(self, amount):
        return threads.deferToThread(TimeoutServer.delay, self, amount)


# ---------------------------------------------------------------------------------------------
# The tests: one body, four servers.

class NativeExampleTests:
    """The examples' client side made with ``DeferredProxy``, against one server (see the
    subclasses). Daemons are started by test_examples' own ``ExampleTests.start``."""

    timeout = 60
    target: str
    threaded: bool
    thread_per_connection: bool
    oneway_batch_in_line: bool
    daemon_frames: list[str]

    start = examples.ExampleTests.start
    ours = examples.ExampleTests.ours

    def __init_subclass__(cls, server: type | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if server is not None:  # the settings of test_examples' class for that server
            for name in SERVER_SETTINGS:
                setattr(cls, name, getattr(server, name))

    def setUp(self) -> None:
        examples.ExampleTests.setUp(self)
        clear_context()
        self.addCleanup(clear_context)

    def closing(self, proxy: DeferredProxy) -> DeferredProxy:
        """``proxy``, closed by a cleanup (before the daemon, which was started earlier)."""
        self.addCleanup(proxy.close)
        return proxy

    def proxy(self, uri: Any, **kwargs: Any) -> DeferredProxy:
        return self.closing(DeferredProxy(uri, **kwargs))

    # -- the examples ------------------------------------------------------------------------

    @async_test
    async def test_attributes(self):
        daemon = self.start()
        uri = daemon.register(AttributesThingy, "example.attributes")
        seen = {}
        p = self.proxy(uri, max_connections=1)  # one connection: one session, one Thingy
        seen["first"] = await p.getattr("prop_value")
        await p.setattr("prop_value", await p.getattr("prop_value") + 500)  # p.prop_value += 500
        seen["after +500"] = await p.getattr("prop_value")
        seen["getValue"] = await p.getValue()
        seen["__dunder__"] = await p.call("__dunder__")  # p.__dunder__ is never remote here
        self.assertRaises(AttributeError, lambda: p.__dunder__)
        seen["metadata"] = (sorted(p._pyroMethods), sorted(p._pyroAttrs), sorted(p._pyroOneway))
        await p.close()
        p = self.proxy(uri, max_connections=1)  # a new proxy: a new session, a new Thingy
        seen["new session"] = await p.getattr("prop_value")
        for name in ("sub", "value", "_value", "__value"):
            error = await failure_of(p.getattr(name))
            self.assertIsInstance(error, AttributeError)
            seen[name] = str(error).replace(str(uri), "<uri>")
        await p.close()
        p = self.proxy(uri, max_connections=1)
        value = await p.getattr("prop_sub")
        (await p.getattr("prop_sub")).update({"test": "nope"})  # only updates the local copy!
        seen["prop_sub"] = (value, await p.getattr("prop_sub"))
        try:
            _ = (await p.getattr("prop_sub")).foobar.attribute
        except Exception as x:
            seen["dotted"] = (type(x).__name__, str(x), getattr(x, "_pyroTraceback", None))
        # Pyro4's proxy.name = value: the same check, the same message
        error = await failure_of(p.setattr("value", 1))
        seen["setattr value"] = (type(error).__name__, str(error).replace(str(uri), "<uri>"))

        check_attributes(self, seen)
        self.assertEqual(seen["setattr value"], (
            "AttributeError", "remote object '<uri>' has no exposed attribute 'value'"))

    @async_test
    async def test_batchedcalls(self):
        daemon = self.start()
        uri = daemon.register(BatchedThingy, "example.batched")
        p = self.proxy(uri, max_connections=1)  # the example's order: one connection
        seen = {}
        await p.printmessage("beginning normal calls")
        calls = []
        for _ in range(NUMBER_OF_LOOPS):  # all at once: pipelined, answered in order
            calls += [p.multiply(7, 6), p.add(10, 20)]
        seen["normal"] = sum(await defer.gatherResults(calls, consumeErrors=True))
        await p.printmessage("end of normal calls")

        batch = p.batch()
        batch.printmessage("beginning batch #1")
        for _ in range(NUMBER_OF_LOOPS):
            batch.multiply(7, 6)
            batch.add(10, 20)
        batch.printmessage("end of batch #1")
        results = await batch()
        seen["batch #1"] = (len(results), sum(results))

        seen["oneway batch"] = await fill_batch_two(p.batch())(oneway=True)

        batch = p.batch()
        batch.printmessage("beginning batch #3")
        batch.multiply(7, 6)
        batch.add(10, 20)
        batch.delay(0.02)
        batch.printmessage("end of batch #3")
        seen["async batch"] = await batch(asynchronous=True)
        seen["left in the batch"] = len(batch)  # Pyro4's asynchronous batch leaves all 5

        for d in range(3, -3, -1):  # divide by 3,2,1,0,-1,-2... but 0 will be a problem ;-)
            batch.divide(100, d)
        try:
            await batch()
        except ZeroDivisionError as x:
            seen["error batch"] = (x._pyroBatchResults, str(x),
                                   remote_frames(Pyro4.util.getPyroTraceback()))

        self.assertEqual(seen["left in the batch"], 0)
        # so the error batch gives [33, 50, 100]; Pyro4: [0, 42, 30, 0.02, 0, 33, 50, 100],
        # batch #3's calls having stayed in the batch
        await check_batchedcalls(self, seen, async_batch_kept=False)

    @async_test
    async def test_batchedcalls_oneway_batch_runs_before_the_next_call(self):
        uri = serve_in_line(self, BatchedThingy, "example.batched")
        p = self.proxy(uri, max_connections=1)
        self.assertIsNone(await fill_batch_two(p.batch()).send(oneway=True))
        self.assertEqual(await p.printmessage("after batch #2"), 0)
        self.assertEqual(say.items, ["beginning batch #2", "end of batch #2", "after batch #2"])

    @async_test
    async def test_batchedcalls_oneway_batch_unthreaded_runs_before_the_next_call(self):
        """``ONEWAY_THREADED=False``: a oneway batch runs in line on every server."""
        patch_config(self, ONEWAY_THREADED=False)
        uri = serve_in_line(self, BatchedThingy, "example.batched")
        p = self.proxy(uri, max_connections=1)
        self.assertIsNone(await fill_batch_two(p.batch()).send(oneway=True))
        self.assertEqual(await p.printmessage("after batch #2"), 0)
        self.assertEqual(say.items, ["beginning batch #2", "end of batch #2", "after batch #2"])

    @async_test
    async def test_blob_dispatch(self):
        register_custom_data(self)
        daemon = self.start()
        uri = daemon.register(BlobDispatcher, "example.blobdispatcher")
        listeners, weather, news = serve_blob_listeners(self)
        dispatcher = self.proxy(uri)
        self.addCleanup(release_listener_proxies, daemon)
        # registered Pyro objects travel as proxies (Pyro4's autoproxy), from this client too
        await dispatcher.register("weather", weather)
        await dispatcher.register("news", news)
        for topic in ("weather", "news", "weather", "nobody listens"):
            data = CustomData(42, "hello " + topic, BLOB_TIME)
            blob = Pyro4.core.SerializedBlob(topic, data)
            self.assertIsNone(await dispatcher.process_blob(blob))
        on_weather = await in_thread(weather.received.wait_for, 2)
        on_news = await in_thread(news.received.wait_for, 1)
        check_blob_dispatch(self, on_weather, on_news)
        self.assertEqual([item for item in say.items if str(item).startswith("New listener")], [
            "New listener for topic %s registered: %s" % (listener.topic,
                                                          listeners.daemon.uriFor(listener))
            for listener in (weather, news)])

    @async_test
    async def test_callcontext(self):
        daemon = self.start(ContextDaemon)
        daemon._pyroHmacKey = CONTEXT_HMAC
        uri = daemon.register(ContextEchoServer, "example.context")
        responses: list[Any] = []  # (msgtype, annotations) as the example's proxy prints them

        proxy = self.closing(CustomAnnotationProxy(uri, responses))
        for i in range(4):
            self.assertEqual(await proxy.echo("hello-%d" % i), "hello-%d" % i)
        await proxy.close()
        for i in range(2):
            p = self.closing(CustomAnnotationProxy(uri, responses))
            await p.echo("hello-new-%d" % i)
            await p.close()
        proxy = self.closing(CustomAnnotationProxy(uri, responses))
        self.assertIsNone(await proxy.oneway("hello-ONEWAY-1"))  # only a connection response
        self.assertIsNone(await proxy.oneway("hello-ONEWAY-2"))  # no response at all
        # the example's proxy._pyroAsync() call: made by a copy of the proxy in another
        # thread, which has no correlation id; here a proxy without one, and not awaited yet
        asynchronous = self.closing(CustomAnnotationProxy(uri, responses, correlation_id=None))
        result = asynchronous.echo("hello-ASYNC")
        self.assertEqual(await result, "hello-ASYNC")
        await proxy.close()
        await asynchronous.close()

        # the new way: annotations through the call context (the correlation id too, in a
        # Pyro4 client's thread; here the proxy's, see test_callcontext_correlation_id)
        proxy = self.proxy(uri, hmac_key=CONTEXT_HMAC, correlation_id=CONTEXT_CORRELATION)
        Pyro4.current_context.annotations = {"XYZZ": b"custom annotation from client via new way(1)"}
        await proxy.echo("hi there - new method of annotation access in client")
        normal = dict(Pyro4.current_context.response_annotations)
        Pyro4.current_context.annotations = {"XYZZ": b"custom annotation from client via new way(2)"}
        await proxy.oneway("hi there ONEWAY - new method of annotation access in client")
        after_oneway = dict(Pyro4.current_context.response_annotations)
        await proxy.close()

        # the assertions of test_examples.test_callcontext
        calls = await check_callcontext(self, daemon, responses, normal, after_oneway)
        # one connection per proxy (the example compares with the proxy's socket address)
        addresses = [calls[m]["context.client_sock_addr"] for m in ("hello-0", "hello-1",
                                                                    "hello-2", "hello-3")]
        self.assertEqual(len(set(addresses)), 1, addresses)
        addresses = [addresses[0]] + [calls["hello-new-%d" % i]["context.client_sock_addr"]
                                      for i in range(2)]
        self.assertEqual(len(set(addresses)), 3, addresses)
        self.assertEqual({address[0] for address in addresses}, {"127.0.0.1"})

    @async_test
    async def test_callcontext_correlation_id(self):
        """The example sets ``Pyro4.current_context.correlation_id`` in the client's thread;
        ``correlation_id=`` sets one per proxy, and wins over the context's."""
        daemon = self.start()
        uri = daemon.register(ContextEchoServer, "example.context")
        other = uuid.UUID(int=42)
        Pyro4.current_context.correlation_id = CONTEXT_CORRELATION  # correlation_id= wins
        proxy = self.proxy(uri, correlation_id=other, max_connections=1)
        for i in range(2):
            await proxy.echo("proxy's %d" % i)
            self.assertEqual(Pyro4.current_context.response_annotations["CORR"], other.bytes)
        said = await in_thread(say.wait_for, 2)
        self.assertEqual([entry["context.correlation_id"] for entry in said], [other, other])

    @async_test
    async def test_callcontext_correlation_id_from_the_context(self):
        """The example's way: the correlation id of the client's thread goes with every call."""
        # (with our server in the same reactor: serving calls there leaves this thread's
        # client context alone, see tests/server/test_protocol.py)
        daemon = self.start()
        uri = daemon.register(ContextEchoServer, "example.context")
        Pyro4.current_context.correlation_id = CONTEXT_CORRELATION
        proxy = self.proxy(uri, max_connections=1)
        for i in range(3):
            await proxy.echo("context's %d" % i)
            self.assertEqual(Pyro4.current_context.response_annotations["CORR"],
                             CONTEXT_CORRELATION.bytes)
        self.assertIsNone(await proxy.oneway("context's oneway"))
        said = await in_thread(say.wait_for, 4)
        self.assertEqual([entry["context.correlation_id"] for entry in said],
                         [CONTEXT_CORRELATION] * 4)

    @async_test
    async def test_exceptions(self):
        daemon = self.start()
        uri = daemon.register(ExceptionsTestClass, "example.exceptions")
        test = self.proxy(uri)
        seen = {}
        seen["div"] = await test.div(2.0, 9.0)
        seen["div by zero"] = await outcome(test.div(2, 0))
        seen["error"] = await outcome(test.error())
        result = await test.error2()
        seen["error2"] = (type(result).__name__, str(result))
        seen["othererr"] = await outcome(test.othererr())
        seen["unserializable"] = await outcome(test.unserializable())
        try:
            await test.complexerror()
        except Exception as x:
            seen["complexerror"] = (type(x).__name__, str(x),
                                    remote_frames(Pyro4.util.getPyroTraceback()))
            error = x
        check_exceptions(self, seen)
        # outside the except block: the exception's own traceback, as for a Failure
        frames = remote_frames(Pyro4.util.getPyroTraceback(type(error), error,
                                                           error.__traceback__))
        self.assertEqual(frames, self.daemon_frames + ["complexerror", "crash", "crash2"])
        self.assertEqual(await test.div(9, 3), 3.0)  # the connection is still fine

    @async_test
    async def test_handshake(self):
        daemon = self.start(HandshakeDaemon)
        uri = daemon.uriFor(Pyro4.constants.DAEMON_NAME)
        received: list[Any] = []
        proxy = self.closing(CustomHandshakeProxy(uri, received, handshake=secret_code))
        await proxy.connect()  # the example's _pyroBind()
        accepted = ("ok", await proxy.ping(), list(received))
        await proxy.close()
        received.clear()
        proxy = self.closing(CustomHandshakeProxy(uri, received, handshake="waffles"))
        error = await failure_of(proxy.connect())
        refused = (type(error).__name__, str(error), list(received))
        await proxy.close()

        self.assertEqual(accepted, ("ok", None, [["how", "are", "you", "doing"]]))
        self.assertEqual(refused, (
            "CommunicationError",  # Pyro4: "connection to ('127.0.0.1', PORT) rejected: ..."
            "connection to %s rejected: wrong secret code, connection refused" % uri.location,
            []))
        said = await in_thread(say.wait_for, 5)
        self.assertEqual([item[1] for item in said if item[0] == "Handshake data:"],
                         ["pancakes", "waffles"])
        requests = [item[1] for item in said if item[0] == "Daemon received handshake request from:"]
        self.assertEqual(said[0][0], "Daemon received handshake request from:")
        # only the accepted client disconnects (the refused one never got that far)
        self.assertEqual([item for item in said if item[0] == "Daemon client disconnects:"],
                         [("Daemon client disconnects:", requests[0])])
        self.assertEqual(len(set(requests)), 2, requests)

    @async_test
    async def test_instancemode(self):
        uris = serve_instancemode(self)
        seen = {}
        p = self.proxy(uris["percall"])
        seen["percall"] = [await p.msg("hello%d" % i) for i in (1, 2, 3)]
        await p.close()
        seen["session"] = []
        for hello in ("hello1", "hello2"):
            p = self.proxy(uris["session"], max_connections=1)  # one connection: one session
            calls = []
            for _ in range(3):
                serial, correlation_id = await p.msg(hello)
                # the id the server gave this call (the client set none)
                corr = str(uuid.UUID(bytes=Pyro4.current_context.response_annotations["CORR"]))
                calls.append((serial, correlation_id, corr))
            seen["session"].append(calls)
            await p.close()
        seen["single"] = []
        for hello in ("hello1", "hello2"):
            p = self.proxy(uris["single"])
            seen["single"] += [await p.msg(hello) for _ in range(3)]
            await p.close()

        check_instancemode(self, seen)

    @async_test
    async def test_maxsize(self):
        patch_config(self, MAX_MESSAGE_SIZE=0)
        daemon = self.start()
        uri = daemon.register(Pyro4.test.echoserver.EchoServer(), "test.echoserver")
        huge_object = [42] * 10000
        simple_object = {"message": "hello", "irrelevant": huge_object}
        echoserver = self.proxy(uri, max_connections=1)
        unlimited = await echoserver.echo(simple_object) == simple_object
        try:
            Pyro4.config.MAX_MESSAGE_SIZE = 2500
            limited = await outcome(echoserver.echo(simple_object))
            small = await outcome(echoserver.echo("small"))  # still fits, on the same connection
        finally:
            Pyro4.config.MAX_MESSAGE_SIZE = 0
        check_maxsize(self, unlimited, limited, small)

    @async_test
    async def test_echoserver(self):
        daemon = self.start()
        echo = Pyro4.test.echoserver.EchoServer()
        uri = daemon.register(echo, "test.echoserver")
        echoserver = self.proxy(uri)
        seen = {}
        seen["hello"] = await echoserver.echo("hello")
        seen["list"] = await echoserver.echo([1, 2, 3, 4])
        seen["generator"] = [item async for item in await echoserver.generator()]
        try:
            await echoserver.error()
        except Exception as x:
            seen["error"] = (type(x).__name__, str(x),
                             remote_frames(Pyro4.util.getPyroTraceback()))
        seen["oneway"] = await echoserver.oneway_echo("into the void")
        seen["__dunder__"] = await echoserver.call("__dunder__")
        # the example's echoserver._pyroInvoke("_private", ...) skips Pyro4's metadata check,
        # so the server refuses it; DeferredProxy._invoke is the same internal door
        seen["_private"] = await outcome(echoserver._invoke(None, "_private", (), {}))
        seen["verbose"] = await echoserver.getattr("verbose")
        seen["shutdown"] = await echoserver.shutdown()
        check_echoserver(self, seen, echo)
        # the public way is checked by the client, with a Pyro4.Proxy's message for proxy._private
        self.assertEqual(await outcome(echoserver.call("_private")), (
            "AttributeError",
            "remote object '%s' has no exposed attribute or method '_private'" % uri))

    @async_test
    async def test_hugetransfer(self):
        daemon = self.start()
        uri = daemon.register(HugeTestclass, "example.hugetransfer")
        sizes = []
        for data in ("x" * datasize, b"x" * datasize, bytearray(b"x" * datasize)):
            obj = self.proxy(uri)
            await obj.connect()
            sizes += await defer.gatherResults([obj.transfer(data) for _ in range(2)],
                                               consumeErrors=True)  # both at once
            await obj.close()
        p = self.proxy(uri)
        stream = await p.download_chunks(datasize * 2)
        self.assertIsInstance(stream, ItemStream)
        chunks = [len(serpent.tobytes(chunk)) async for chunk in stream]
        check_hugetransfer(self, sizes, chunks)
        self.assertEqual([item for item in say.items if item.startswith("received")],
                         ["received %d bytes" % datasize] * 6)

    @async_test
    async def test_oneway(self):
        daemon = self.start()
        server = OnewayServer()
        self.addCleanup(server.release.set)  # never leave the oneway call waiting
        uri = daemon.register(server, "example.oneway")
        serv = self.proxy(uri)
        seen = {}
        seen["oneway_start"] = await serv.oneway_start(WAIT)
        seen["nothing"] = [await serv.nothing() for _ in range(4)]  # served while it works
        self.assertTrue(await in_thread(server.working.wait, WAIT))
        seen["ready while working"] = await serv.ready()
        server.release.set()
        self.assertTrue(await in_thread(server.done.wait, WAIT))
        seen["ready when done"] = await serv.ready()
        seen["result"] = await serv.result()
        seen["oneway_work"] = await serv.oneway_work()
        await check_oneway(self, seen)

    @async_test
    async def test_oneway_unthreaded(self):
        """``ONEWAY_THREADED=False``: oneway calls run in line, before the next request."""
        patch_config(self, ONEWAY_THREADED=False)
        server = OnewayServer()
        uri = serve_in_line(self, server, "example.oneway")
        serv = self.proxy(uri, max_connections=1)
        self.assertIsNone(await serv.oneway_start(0.05))  # a little work (nobody releases it)
        self.assertEqual((await serv.ready(), server.done.is_set()), (True, True))

    @async_test
    async def test_streaming(self):
        patch_config(self, ITER_STREAMING=True)
        daemon = self.start()
        uri = daemon.register(Streamer, "example.streamer")
        p = self.proxy(uri)
        seen = {}
        seen["list"] = await p.list()
        seen["iterator"] = [number async for number in await p.iterator()]
        seen["generator"] = [number async for number in await p.generator()]
        seen["slow_generator"] = [number async for number in await p.slow_generator()]
        fibonacci = await p.fibonacci()
        seen["fibonacci"] = [await fibonacci.next() for _ in range(12)]  # islice(fibonacci, 12)
        self.assertIsNone(await fibonacci.close())
        seen["after close"] = await outcome(fibonacci.next())
        Pyro4.config.ITER_STREAMING = False  # "iter-streaming has not been enabled"
        try:
            seen["streaming disabled"] = await outcome(p.generator())
            seen["list, streaming disabled"] = await p.list()
        finally:
            Pyro4.config.ITER_STREAMING = True
        # "after close": ("StopAsyncIteration", ""); Pyro4: ("StopIteration", "")
        check_streaming(self, seen, stop="StopAsyncIteration")

    @async_test
    async def test_timeout(self):
        server = OffReactorTimeoutServer() if self.target == "reactor" else TimeoutServer()
        server.released = {amount: threading.Event() for amount in range(FOREVER, FOREVER + 3)}
        uri, frozen_uri = serve_timeout(self, server)
        timed_out = "call timed out after %s seconds" % SECOND  # Pyro4: "receiving: timeout"

        seen = {}
        obj = self.proxy(uri)  # COMMTIMEOUT 0: no timeout
        await obj.connect()
        seen["no timeout"] = await obj.delay(2)
        obj._pyroTimeout = 1 * SECOND
        seen["timeout 1"] = await outcome(obj.delay(FOREVER))
        server.released[FOREVER].set()  # the call we gave up on may finish now
        await obj.close()

        Pyro4.config.COMMTIMEOUT = 1 * SECOND
        try:
            obj = self.proxy(uri)  # the timeout is COMMTIMEOUT's when the proxy is made
        finally:
            Pyro4.config.COMMTIMEOUT = 0
        seen["global timeout"] = await outcome(obj.delay(FOREVER + 1))
        server.released[FOREVER + 1].set()
        obj._pyroTimeout = None
        seen["timeout off"] = await obj.delay(3)
        # not in the example: a timeout per call, either way
        seen["invoke timeout"] = await outcome(obj.invoke("delay", [FOREVER + 2],
                                                          timeout=SECOND))
        server.released[FOREVER + 2].set()
        obj._pyroTimeout = SECOND
        seen["invoke no timeout"] = await obj.invoke("delay", [2], timeout=None)
        await obj.close()

        obj = self.proxy(frozen_uri, timeout=1 * SECOND)
        seen["frozen daemon"] = await outcome(obj.delay(5))  # connecting times out
        await obj.close()

        frozen_type, frozen_message = seen.pop("frozen daemon")
        self.assertEqual(seen, {
            "no timeout": "slept 2 seconds",
            "timeout 1": ("TimeoutError", timed_out),
            "global timeout": ("TimeoutError", timed_out),
            "timeout off": "slept 3 seconds",
            "invoke timeout": ("TimeoutError", timed_out),
            "invoke no timeout": "slept 2 seconds",
        })
        self.assertEqual(frozen_type, "TimeoutError")
        self.assertIn(frozen_message, {  # the call's, or the handshake's (same delay)
            timed_out, "cannot connect to %s: no handshake reply within %s seconds"
            % (frozen_uri.location, SECOND)})

    @async_test
    async def test_usersession(self):
        uris = serve_usersession(self)
        seen = {}
        for db in ("sessiondb", "singletondb"):  # sequential access using multiple proxies
            p1 = self.closing(UserProxy(uris[db]))
            p2 = self.closing(UserProxy(uris[db]))
            await p1.store("number", 42)
            first = await p1.retrieve("number")
            await p2.store("number", 43)
            seen[db] = (first, await p2.retrieve("number"))
            await p1.close()
            await p2.close()

        # each session's database connection is for the user of the session's first call
        p1 = self.closing(UserProxy(uris["sessiondb"], "user123"))
        p2 = self.closing(UserProxy(uris["sessiondb"], "mallory"))
        await p1.connect()
        await p2.connect()
        seen["user123 session"] = await outcome(p1.store("number", 1))
        seen["mallory session"] = await outcome(p2.store("number", 2))
        seen["user123 again"] = await outcome(p1.retrieve("number"))
        await p1.close()
        await p2.close()

        for db in ("sessiondb", "singletondb"):  # multiple concurrent proxies
            errors: list[Any] = []

            async def run(db=db, errors=errors):
                proxy = self.closing(UserProxy(uris[db]))
                for i in range(3):
                    try:
                        await proxy.store("number", 100 + i)
                        await proxy.retrieve("number")
                    except Exception as x:
                        errors.append((type(x).__name__, str(x)))
                await proxy.close()

            await defer.gatherResults([defer.ensureDeferred(run()) for _ in range(2)],
                                      consumeErrors=True)
            seen["concurrent " + db] = errors

        check_usersession(self, seen)

    @async_test
    async def test_warehouse(self):
        warehouse = self.proxy(serve_warehouse(self))  # the example's visit.py
        janet = NativePerson("Janet", ["teddy bear", "bike"])
        henry = NativePerson("Henry", ["", "chair"])
        await janet.visit(warehouse)
        await henry.visit(warehouse)
        thief = NativePerson("Thief", ["", "unicorn"])
        stolen = await outcome(thief.visit(warehouse))
        contents = await warehouse.list_contents()
        check_warehouse(self, janet.saw, henry.saw, stolen, contents)
        self.assertEqual(warehouse.uri.protocol, "PYRONAME")  # resolved, not rewritten


    # -- regression tests for what these examples found in pyro.client ------------------------

    @async_test
    async def test_fix_response_annotations_hook(self):
        """``_pyroResponseAnnotations(annotations, msgtype)``: called as a Pyro4.Proxy calls it."""
        patch_config(self, ITER_STREAMING=True)
        daemon = self.start()
        uri = daemon.register(Streamer, "example.streamer")
        seen: list[Any] = []

        class Hooked(DeferredProxy):
            fail_next = False

            def _pyroResponseAnnotations(self, annotations, msgtype):
                seen.append((msgtype, sorted(annotations)))
                if self.fail_next:
                    self.fail_next = False
                    raise ValueError("refused by the hook")

        proxy = self.closing(Hooked(uri, max_connections=1, backoff=lambda failures: 0))
        self.assertEqual(await proxy.list(), [1, 2, 3, 4, 5, 6, 7, 8, 9])
        stream = await proxy.generator()
        self.assertEqual(await stream.next(), 1)
        self.assertIsNone(await stream.close())
        CONNECTOK, RESULT = Pyro4.message.MSG_CONNECTOK, Pyro4.message.MSG_RESULT
        # the item stream's reply is an exception reply: Pyro4's daemons send no CORR with
        # those, ours do (a server difference, not the client's)
        stream_reply = seen.pop(2)
        self.assertEqual(stream_reply[0], RESULT)
        self.assertIn("STRM", stream_reply[1])
        self.assertEqual(seen, [(CONNECTOK, ["CORR"]), (RESULT, ["CORR"]),  # handshake, list()
                                (RESULT, ["CORR"])])  # next()
        seen.clear()
        proxy.fail_next = True
        error = await failure_of(proxy.list())
        self.assertEqual((type(error), str(error)), (ValueError, "refused by the hook"))
        self.assertEqual(await proxy.list(), [1, 2, 3, 4, 5, 6, 7, 8, 9])  # still in sync
        await proxy.close()
        proxy.fail_next = True  # on CONNECTOK: the connection is refused
        error = await failure_of(proxy.connect())
        self.assertEqual((type(error), str(error)), (ValueError, "refused by the hook"))
        self.assertEqual(await proxy.list(), [1, 2, 3, 4, 5, 6, 7, 8, 9])

    @async_test
    async def test_fix_oneway_leaves_no_response_annotations(self):
        daemon = self.start()
        uri = daemon.register(ContextEchoServer, "example.context")
        proxy = self.proxy(uri, max_connections=1)
        self.assertEqual(await proxy.echo("first"), "first")
        self.assertEqual(sorted(Pyro4.current_context.response_annotations), ["CORR"])
        self.assertIsNone(await proxy.oneway("second"))
        self.assertEqual(Pyro4.current_context.response_annotations, {})
        batch = proxy.batch()
        batch.echo("third")
        await batch.send()
        self.assertEqual(sorted(Pyro4.current_context.response_annotations), ["CORR"])
        batch.echo("fourth")
        self.assertIsNone(await batch.send(oneway=True))
        self.assertEqual(Pyro4.current_context.response_annotations, {})

    @async_test
    async def test_fix_attribute_error_messages(self):
        """Pyro4's messages: ``proxy.name`` of neither attribute nor method says "attribute or
        method"; ``proxy.name = value`` of a non-attribute says "attribute"."""
        daemon = self.start()
        uri = daemon.register(AttributesThingy, "example.attributes")
        proxy = self.proxy(uri)
        messages = {}
        for what, d in [("get missing", proxy.getattr("missing")),
                        ("get method", proxy.getattr("getValue")),
                        ("set missing", proxy.setattr("missing", 1)),
                        ("set method", proxy.setattr("getValue", 1)),
                        ("call missing", proxy.missing())]:
            error = await failure_of(d)
            self.assertIsInstance(error, AttributeError)
            messages[what] = str(error).replace(str(uri), "<uri>")
        self.assertEqual(messages, {
            "get missing": "remote object '<uri>' has no exposed attribute or method 'missing'",
            "get method": "remote object '<uri>' has no exposed attribute 'getValue'",
            "set missing": "remote object '<uri>' has no exposed attribute 'missing'",
            "set method": "remote object '<uri>' has no exposed attribute 'getValue'",
            "call missing": "remote object '<uri>' has no exposed attribute or method 'missing'",
        })


class OnOurReactor(NativeExampleTests, unittest.TestCase, server=examples.OnOurReactor):
    pass


class OnOurThreadPool(NativeExampleTests, unittest.TestCase, server=examples.OnOurThreadPool):
    pass


class OnPyro4Thread(NativeExampleTests, unittest.TestCase, server=examples.OnPyro4Thread):
    pass


class OnPyro4Multiplex(NativeExampleTests, unittest.TestCase, server=examples.OnPyro4Multiplex):
    pass
