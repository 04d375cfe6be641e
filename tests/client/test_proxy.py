"""The native client against real servers: Pyro4's own daemons (thread and multiplex) and ours.

One test body, three servers: :class:`ClientTests` holds the tests, the subclasses at the
bottom say which server they run against. Everything listens on 127.0.0.1, port 0, and is
stopped by cleanups that wait (proxies are closed before their server stops: trial runs
cleanups last-in first-out).
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import Pyro4
from Pyro4 import errors
from Pyro4.core import SerializedBlob
from twisted.internet import defer, reactor, task, threads
from twisted.internet.protocol import Factory, Protocol
from twisted.python.threadable import isInIOThread
from twisted.trial.unittest import TestCase

from pyro.client import DeferredProxy, ItemStream, locate_ns, resolve
from pyro.protocol import DEFAULT_BACKLOG, Pyro4ProtocolFactory

from ..support import our_server, pyro4_peers
from ..support.asynctest import async_test, failure_of
from ..support.config import config_changed

ALL_SERIALIZERS = {"serpent", "json", "marshal", "msgpack", "pickle"}



@Pyro4.expose
class Servant:
    def __init__(self) -> None:
        self._value = 1
        self.remembered: list[Any] = []

    def add(self, a: Any, b: Any = 0) -> Any:
        return a + b

    def echo(self, value: Any) -> Any:
        return value

    def fail(self, message: str) -> None:
        raise ValueError(message)

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._value = value

    @Pyro4.oneway
    def remember(self, value: Any) -> None:
        self.remembered.append(value)

    def recall(self) -> list[Any]:
        return list(self.remembered)

    def count(self, n: int) -> Any:
        return (i for i in range(n))

    def correlation(self) -> str:
        return str(Pyro4.current_context.correlation_id)

    def blob(self, blob: Any) -> list[Any]:
        return [type(blob).__name__, blob.info, blob.deserialized()]

    def drop_first(self) -> int:
        """Closes the calling connection before replying, the first time only."""
        self.drops = getattr(self, "drops", 0) + 1
        if self.drops == 1:
            Pyro4.current_context.client.close()
        return self.drops

    def serializer_id(self) -> int:
        return Pyro4.current_context.serializer_id

    def note(self, value: Any) -> Any:
        self.remembered.append(value)
        return value

    def where(self) -> list[Any]:
        """The calling connection's client address."""
        return list(Pyro4.current_context.client_sock_addr)

    def child(self, name: str) -> Child:
        """A new object registered with this servant's daemon: Pyro4 sends a proxy for it."""
        child = Child(name)
        self._pyroDaemon.register(child)
        return child

    def children(self, names: list[str]) -> dict[str, Any]:
        return {"list": [self.child(name) for name in names], "pair": (self.child("t"), 1)}

    def slow(self, seconds: float) -> Any:
        if isInIOThread():  # our server, without a thread pool: do not block the reactor
            return task.deferLater(reactor, seconds, lambda: "slept")
        time.sleep(seconds)  # a Pyro4 daemon's worker
        return "slept"


@Pyro4.expose
class Child:
    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name

    @Pyro4.oneway
    def ping(self) -> None:
        pass


async def _eventually(check: Callable[[], Any], tries: int = 200) -> Any:
    """Poll an async ``check`` until it returns something truthy (for oneway side effects)."""
    for _ in range(tries):
        result = await check()
        if result:
            return result
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition never became true")



class ClientTests:
    """The tests; a subclass provides :meth:`serve` (one of the three servers)."""

    servertype = "?"

    def serve(self, obj: Any, hmac_key: bytes | None = None,
              accepted: set[str] | None = None) -> Any:
        raise NotImplementedError

    def serve_validating(self, obj: Any) -> Any:
        """Serve ``obj`` on a server whose ``validateHandshake`` wants "let me in"."""
        raise NotImplementedError

    def proxy(self, uri: Any, **kwargs: Any) -> DeferredProxy:
        proxy = DeferredProxy(uri, **kwargs)
        self.addCleanup(proxy.close)  # type: ignore[attr-defined]
        return proxy

    @async_test
    async def test_calls(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        self.assertEqual(await proxy.add(1, 2), 3)
        self.assertEqual(await proxy.add("a", b="b"), "ab")
        self.assertEqual(await proxy.call("echo", [1, 2]), [1, 2])
        self.assertEqual(await proxy.invoke("add", (2, 3), timeout=10), 5)
        self.assertIn("add", proxy._pyroMethods)

    @async_test
    async def test_remote_exception_keeps_type_and_traceback(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        exc = await failure_of(proxy.fail("boom"))
        self.assertIsInstance(exc, ValueError)
        self.assertEqual(str(exc), "boom")
        remote = "".join(Pyro4.util.getPyroTraceback(type(exc), exc, exc.__traceback__))
        self.assertIn("Remote traceback", remote)
        self.assertIn("raise ValueError(message)", remote)
        self.assertEqual(await proxy.add(1, 1), 2)  # the connection is still fine

    @async_test
    async def test_unknown_method_fails_locally(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        exc = await failure_of(proxy.no_such_method())
        self.assertIsInstance(exc, AttributeError)
        self.assertRaises(AttributeError, lambda: proxy._private)

    @async_test
    async def test_attributes(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        self.assertEqual(await proxy.getattr("value"), 1)
        self.assertIsNone(await proxy.setattr("value", 5))
        self.assertEqual(await proxy.getattr("value"), 5)
        self.assertIsInstance(await failure_of(proxy.getattr("nope")), AttributeError)

    @async_test
    async def test_oneway(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        await proxy.connect()
        self.assertIn("remember", proxy._pyroOneway)
        self.assertIsNone(await proxy.remember(42))
        self.assertEqual(await _eventually(proxy.recall), [42])

    @async_test
    async def test_batch(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        batch = proxy.batch()
        batch.add(1, 2)
        batch.echo("x")
        self.assertEqual(await batch.send(), [3, "x"])
        batch.add(1, 1)
        batch.fail("in a batch")
        batch.add(2, 2)
        exc = await failure_of(batch.send())
        self.assertIsInstance(exc, ValueError)
        self.assertEqual(exc._pyroBatchResults, [2])
        self.assertIn("in a batch", "".join(Pyro4.util.getPyroTraceback(
            type(exc), exc, exc.__traceback__)))
        batch.remember("batched")
        self.assertIsNone(await batch.send(oneway=True))
        self.assertEqual(await _eventually(proxy.recall), ["batched"])
        batch.echo(1)
        batch.add(2, 3)
        self.assertEqual(len(batch), 2)
        self.assertEqual(await batch(), [1, 5])  # Pyro4's spelling of send()
        self.assertEqual(len(batch), 0)
        self.assertRaises(errors.PyroError, batch, oneway=True, asynchronous=True)

    @async_test
    async def test_item_streams(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        stream = await proxy.count(4)
        self.assertIsInstance(stream, ItemStream)
        self.assertEqual([item async for item in stream], [0, 1, 2, 3])
        self.assertIsInstance(await failure_of(stream.next()), StopAsyncIteration)
        stream = await proxy.count(10)
        self.assertEqual(await stream.next(), 0)
        self.assertEqual(await stream.next(), 1)
        self.assertIsNone(await stream.close())
        self.assertIsInstance(await failure_of(stream.next()), StopAsyncIteration)
        self.assertEqual(await proxy.add(1, 2), 3)

    @async_test
    async def test_a_stream_left_unfinished_is_closed_when_dropped(self) -> None:
        """Pyro4's stream iterator closes itself when it is collected; ours too, so that a
        loop left with ``break`` does not leave the stream open on the server until it
        expires."""
        uri = Pyro4.core.URI(self.serve(Servant()))
        proxy = self.proxy(uri)
        stream = await proxy.count(1000)
        async for _ in stream:
            break
        stream_id = stream.stream_id
        del stream
        gc.collect()
        daemon = self.proxy("PYRO:%s@%s:%d" % (Pyro4.constants.DAEMON_NAME, uri.host,
                                               uri.port))

        async def terminated() -> bool:
            try:
                await daemon.get_next_stream_item(stream_id)
            except errors.PyroError as exc:
                return "terminated" in str(exc)
            return False

        self.assertTrue(await _eventually(terminated))

    @async_test
    async def test_item_stream_requests_take_their_turn(self) -> None:
        proxy = self.proxy(self.serve(Servant()), max_connections=1, max_in_flight=1)
        stream = await proxy.count(3)
        calls = [stream.next(), proxy.add(1, 2), stream.next(), stream.next(), stream.next()]
        self.assertTrue(repr(proxy).endswith(" 1 in flight, 4 queued>"), repr(proxy))
        results = await defer.DeferredList(calls, consumeErrors=True)
        self.assertEqual([value if ok else value.type for ok, value in results],
                         [0, 3, 1, 2, StopAsyncIteration])

    @async_test
    async def test_hmac(self) -> None:
        uri = self.serve(Servant(), hmac_key=b"secret")
        self.assertEqual(await self.proxy(uri, hmac_key="secret").add(1, 2), 3)
        exc = await failure_of(self.proxy(uri).add(1, 2))
        self.assertIsInstance(exc, errors.CommunicationError)
        exc = await failure_of(self.proxy(uri, hmac_key=b"wrong").add(1, 2))
        self.assertIsInstance(exc, errors.CommunicationError)

    @async_test
    async def test_handshake_refused_by_the_server(self) -> None:
        """The server's ``validateHandshake`` sees our handshake data; its exception is
        Pyro4's CONNECTFAIL, which fails every waiting call with its message."""
        uri = self.serve_validating(Servant())
        responses: list[Any] = []

        class Recording(DeferredProxy):
            def _pyroValidateHandshake(self, response: Any) -> None:
                responses.append(response)

        welcomed = Recording(uri, handshake="let me in")
        self.addCleanup(welcomed.close)  # type: ignore[attr-defined]
        self.assertEqual(await welcomed.add(1, 2), 3)
        self.assertEqual(responses, ["welcome"])  # what validateHandshake returned
        refused = self.proxy(uri, handshake="anything else", max_connections=1)
        calls = [refused.add(1, 2), refused.add(3, 4)]
        for call in calls:
            exc = await failure_of(call)
            self.assertIsInstance(exc, errors.CommunicationError)
            self.assertIn("members only", str(exc))
        exc = await failure_of(refused.add(5, 6))  # a later call tries again, refused again
        self.assertIn("members only", str(exc))

    @async_test
    async def test_serializers(self) -> None:
        uri = self.serve(Servant(), accepted=ALL_SERIALIZERS)
        for name in ("serpent", "json", "marshal", "msgpack", "pickle"):
            proxy = self.proxy(uri, serializer=name)
            value = [1, "two", {"three": 3.0}]
            self.assertEqual(await proxy.echo(value), value, name)
            self.assertIsInstance(await failure_of(proxy.fail(name)), ValueError)
            stream = await proxy.count(2)
            self.assertEqual([item async for item in stream], [0, 1], name)

    @async_test
    async def test_autoproxied_results_become_deferred_proxies(self) -> None:
        uri = self.serve(Servant(), accepted=ALL_SERIALIZERS)
        # Not marshal: Pyro4's marshal serializer has no type replacements, so a server
        # sends the object's attributes instead of a proxy (to any client).
        for name in ("serpent", "json", "msgpack", "pickle"):
            proxy = self.proxy(uri, serializer=name, timeout=10)
            child = await proxy.child("one")
            self.assertIs(type(child), DeferredProxy, name)
            self.assertEqual(child._pyroOneway, {"ping"}, name)  # metadata came with it
            self.assertEqual((child.timeout, child._serializer_name), (10, name))
            self.assertEqual(await child.name(), "one", name)
            self.assertIsNone(await child.ping(), name)
            nested = await proxy.children(["a", "b"])
            first, second = nested["list"]
            third, one = nested["pair"]
            names = [await first.name(), await second.name(), await third.name()]
            self.assertEqual((names, one), (["a", "b", "t"], 1), name)
            await proxy.close()  # closes the proxies it made, too
            self.assertFalse(child._connections or first._connections, name)

    @async_test
    async def test_autoproxies_dropped_close_their_connections(self) -> None:
        # More than a Pyro4 thread daemon's 40 worker threads: its connections must go as
        # the children are dropped (as Pyro4 proxies close theirs when collected).
        proxy = self.proxy(self.serve(Servant()))
        for i in range(45):
            child = await proxy.child(str(i))
            self.assertEqual(await child.name(), str(i))
            del child
            gc.collect()

    @async_test
    async def test_releasing_a_proxy_leaves_its_autoproxies_connected(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        child = await proxy.child("kept")
        self.assertEqual(await child.name(), "kept")
        await proxy._pyroRelease()  # as releasing a Pyro4 proxy: the child is not touched
        self.assertTrue(child._connections)
        self.assertEqual(await child.name(), "kept")
        await proxy._pyroReconnect()
        self.assertTrue(child._connections)
        self.assertEqual(await proxy.child("again").addCallback(lambda c: c.name()), "again")

    @async_test
    async def test_pyro4_names_for_the_settings(self) -> None:
        uri = self.serve(Servant(), hmac_key=b"secret", accepted={"serpent", "json"})
        proxy = self.proxy(uri)
        proxy._pyroHmacKey = "secret"  # as code written for a Pyro4.Proxy sets it
        proxy._pyroSerializer = "json"
        self.assertTrue(await proxy._pyroBind())
        self.assertFalse(await proxy._pyroBind())
        json_id = Pyro4.util.get_serializer("json").serializer_id
        self.assertEqual(await proxy.serializer_id(), json_id)
        await proxy._pyroReconnect()
        self.assertEqual(await proxy.add(2, 3), 5)
        await proxy._pyroRelease()
        self.assertFalse(proxy._connections)

    @async_test
    async def test_autoproxied_results_keep_the_hmac_key(self) -> None:
        uri = self.serve(Servant(), hmac_key=b"secret")
        proxy = self.proxy(uri, hmac_key=b"secret")
        child = await proxy.child("keyed")
        self.assertEqual(await child.name(), "keyed")

    @async_test
    async def test_autoproxied_results_left_alone_on_request(self) -> None:
        proxy = self.proxy(self.serve(Servant()), wrap_proxies=False)
        found = await proxy.child("plain")
        self.assertIs(type(found), Pyro4.Proxy)
        found._pyroRelease()

    @async_test
    async def test_max_retries_sends_a_call_again_after_a_lost_connection(self) -> None:
        uri = self.serve(Servant())
        once = self.proxy(uri)
        self.assertIsInstance(await failure_of(once.drop_first()), errors.ConnectionClosedError)
        retrying = self.proxy(uri, max_retries=1)
        self.assertEqual(await retrying.drop_first(), 2)  # the first run's reply never came

        servant = Servant()
        again = self.proxy(self.serve(servant))
        again._pyroMaxRetries = 1  # Pyro4's name
        self.assertEqual(await again.drop_first(), 2)
        self.assertEqual(servant.drops, 2)  # ran twice: retries are for calls that may

    @async_test
    async def test_requests_behind_a_call_that_closed_its_connection_are_not_served(self) -> None:
        servant = Servant()
        proxy = self.proxy(self.serve(servant), max_connections=1)
        await proxy.connect()
        closing, behind = proxy.drop_first(), proxy.note("behind")  # pipelined, one connection
        for call in (closing, behind):
            self.assertIsInstance(await failure_of(call), errors.ConnectionClosedError)
        self.assertEqual(await proxy.recall(), [])  # as with a Pyro4 daemon: never ran

    @async_test
    async def test_min_connections_open_before_the_calls(self) -> None:
        proxy = self.proxy(self.serve(Servant()), min_connections=4, max_connections=4,
                           max_in_flight=4)
        await proxy.connect()

        async def all_up() -> bool:
            return len(proxy._ready) == 4

        await _eventually(all_up)
        addresses = await defer.gatherResults([proxy.where() for _ in range(4)])
        self.assertEqual(len({tuple(address) for address in addresses}), 4)  # one each
        self.assertEqual(len(proxy._connections), 4)  # none opened for the calls

    @async_test
    async def test_pickle_refused_by_default(self) -> None:
        proxy = self.proxy(self.serve(Servant()), serializer="pickle")
        exc = await failure_of(proxy.add(1, 2))
        self.assertIsInstance(exc, errors.CommunicationError)
        self.assertIn("rejected", str(exc))
        self.assertIn("not accepted", str(exc))

    @async_test
    async def test_hundred_calls_in_flight(self) -> None:
        proxy = self.proxy(self.serve(Servant()), max_in_flight=100)
        calls = [proxy.add(i, 1000) for i in range(100)]
        self.assertEqual(await defer.gatherResults(calls), [i + 1000 for i in range(100)])
        self.assertLessEqual(len(proxy._ready), 4)

    @async_test
    async def test_correlation_id(self) -> None:
        correlation_id = uuid.uuid4()
        proxy = self.proxy(self.serve(Servant()), correlation_id=correlation_id)
        self.assertEqual(await proxy.correlation(), str(correlation_id))

    @async_test
    async def test_timeout(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        # a timeout long enough not to fire: the call succeeds, no timer is left behind
        self.assertEqual(await proxy.invoke("add", (1, 2), timeout=30), 3)

    @async_test
    async def test_commtimeout_is_the_default_timeout(self) -> None:
        uri = self.serve(Servant())
        with config_changed(COMMTIMEOUT=0.2):
            proxy = self.proxy(uri)  # read now, as a Pyro4.Proxy reads it when made
            patient = self.proxy(uri, timeout=None)  # an explicit argument wins
        self.assertEqual((proxy.timeout, patient.timeout), (0.2, None))
        self.assertEqual(await proxy.add(1, 2), 3)
        exc = await failure_of(proxy.slow(0.5))
        self.assertIsInstance(exc, errors.TimeoutError)
        self.assertEqual(await patient.slow(0.4), "slept")  # (outlasts the first slow())
        self.assertEqual(await proxy.invoke("slow", (0.3,), timeout=10), "slept")
        self.assertEqual(await proxy.add(2, 2), 4)  # the late reply was dropped

    @async_test
    async def test_serialized_blob(self) -> None:
        proxy = self.proxy(self.serve(Servant()))
        value = [1, "two", {"three": 3.0}]
        self.assertEqual(await proxy.blob(SerializedBlob("info", value)),
                         ["SerializedBlob", "info", value])
        self.assertEqual(await proxy.blob(SerializedBlob(("id", 7), "x" * 5000)),
                         ["SerializedBlob", ("id", 7), "x" * 5000])
        exc = await failure_of(proxy.blob(SerializedBlob("info", value), 2))
        self.assertIsInstance(exc, errors.SerializeError)

    @async_test
    async def test_serialized_blob_through_a_gateway(self) -> None:
        """A servant of ours passes a received blob on, undecoded, to this test's server."""
        target = self.proxy(self.serve(Servant()))  # serpent
        factory = our_server.serve(self)

        @Pyro4.expose
        class Gateway:
            def forward(self, blob: SerializedBlob) -> defer.Deferred[Any]:
                assert blob._contains_blob  # still serialized
                return target.blob(blob)

        # The client speaks marshal: the blob goes on in marshal, which Pyro4's own proxy
        # would have labelled serpent (its serializer) and the target could not decode.
        proxy = self.proxy(factory.register(Gateway()), serializer="marshal")
        self.assertEqual(await proxy.forward(SerializedBlob("info", [1, 2, 3])),
                         ["SerializedBlob", "info", [1, 2, 3]])

    @async_test
    async def test_pyroname_through_a_real_name_server(self) -> None:
        uri = self.serve(Servant())
        ns = pyro4_peers.serve_pyro4_nameserver(self)
        ns.register_name("test.thing", uri, metadata={"kind:servant"})
        proxy = self.proxy(ns.pyroname("test.thing"))
        self.assertEqual(await proxy.add(2, 3), 5)
        self.assertEqual(await proxy.add(3, 3), 6)
        proxy = self.proxy(ns.pyrometa("kind:servant"))
        self.assertEqual(await proxy.add(2, 2), 4)
        resolved = await resolve("PYRONAME:test.thing", ns_uri=ns.uri)
        self.assertEqual(str(resolved), str(uri))
        exc = await failure_of(self.proxy(ns.pyroname("test.missing")).add(1, 1))
        self.assertIsInstance(exc, errors.NamingError)


def _validate(data: Any) -> str:
    if data != "let me in":
        raise ValueError("members only")
    return "welcome"


class _Validating(Pyro4ProtocolFactory):
    def validateHandshake(self, conn: Any, data: Any) -> Any:
        return _validate(data)


class OurServerTests(ClientTests, TestCase):
    servertype = "twisted"

    def serve(self, obj: Any, hmac_key: bytes | None = None,
              accepted: set[str] | None = None) -> Any:
        with config_changed(**({"SERIALIZERS_ACCEPTED": accepted} if accepted else {})):
            factory = Pyro4ProtocolFactory()
        factory._pyroHmacKey = hmac_key
        our_server.serve(self, factory)
        return factory.register(obj)

    def serve_validating(self, obj: Any) -> Any:
        factory = our_server.serve(self, _Validating())
        return factory.register(obj)

    @async_test
    async def test_server_goes_away_and_comes_back(self) -> None:
        factory = our_server.serve(self)
        servant = Servant()
        uri = factory.register(servant, "servant")
        proxy = self.proxy(uri, backoff=lambda attempt: 0.0)
        self.assertEqual(await proxy.add(1, 2), 3)
        await factory.close()
        exc = await failure_of(proxy.add(1, 2))
        self.assertIsInstance(exc, errors.CommunicationError)
        port = reactor.listenTCP(uri.port, factory, interface="127.0.0.1",
                                 backlog=DEFAULT_BACKLOG)
        factory.ports.append(port)
        self.assertEqual(await proxy.add(2, 2), 4)

    @async_test
    async def test_min_connections_ready_before_a_burst(self) -> None:
        factory = our_server.serve(self)
        uri = factory.register(Servant())
        proxy = self.proxy(uri, min_connections=8, max_connections=8, max_in_flight=8)
        await proxy.connect()

        async def all_up() -> bool:
            return len(factory.protocols) == 8 and len(proxy._ready) == 8

        await _eventually(all_up)
        self.assertEqual(await defer.gatherResults([proxy.add(i, 1) for i in range(8)]),
                         list(range(1, 9)))
        self.assertEqual(len(factory.protocols), 8)  # no connection was opened for them

    @async_test
    async def test_unix_socket(self) -> None:
        from twisted.internet.endpoints import UNIXServerEndpoint

        directory = tempfile.mkdtemp(prefix="pyro-client-")
        self.addCleanup(shutil.rmtree, directory, True)  # runs last (cleanups are LIFO)
        factory = Pyro4ProtocolFactory()
        self.addCleanup(factory.close)
        path = os.path.join(directory, "pyro.sock")
        await factory.listen(UNIXServerEndpoint(reactor, path))
        uri = factory.register(Servant())
        self.assertEqual(uri.sockname, path)
        self.assertEqual(await self.proxy(uri).add(1, 2), 3)

    @async_test
    async def test_server_closes_mid_call(self) -> None:
        factory = our_server.serve(self)
        waiting: defer.Deferred[Any] = defer.Deferred()

        @Pyro4.expose
        class Hanging:
            def hang(self) -> defer.Deferred[Any]:
                return waiting

            def ping(self) -> str:
                return "pong"

        proxy = self.proxy(factory.register(Hanging()), max_connections=1)
        calls = [proxy.hang(), proxy.ping(), proxy.ping()]
        await task.deferLater(reactor, 0.05, lambda: None)
        for protocol in list(factory.protocols):
            protocol.transport.loseConnection()
        for call in calls:
            self.assertIsInstance(await failure_of(call), errors.ConnectionClosedError)
        waiting.callback(None)
        self.assertEqual(await proxy.ping(), "pong")  # a later call reconnects


class Pyro4ThreadServerTests(ClientTests, TestCase):
    servertype = "thread"

    def serve(self, obj: Any, hmac_key: bytes | None = None,
              accepted: set[str] | None = None) -> Any:
        config = {"SERIALIZERS_ACCEPTED": accepted} if accepted else {}
        peer = pyro4_peers.serve_pyro4(self, self.servertype, obj, hmac_key=hmac_key, **config)
        return peer.uris[0]


    def serve_validating(self, obj: Any) -> Any:
        class Validating(Pyro4.Daemon):
            def validateHandshake(self, conn: Any, data: Any) -> Any:
                return _validate(data)

        peer = pyro4_peers.serve_pyro4(self, self.servertype, obj, daemon_class=Validating)
        return peer.uris[0]


class Pyro4MultiplexServerTests(Pyro4ThreadServerTests):
    servertype = "multiplex"


class WithoutAServerTests(TestCase):
    @async_test
    async def test_nobody_listening(self) -> None:
        proxy = DeferredProxy("PYRO:thing@127.0.0.1:%d" % pyro4_peers.free_port())
        self.addCleanup(proxy.close)
        exc = await failure_of(proxy.add(1, 2))
        self.assertIsInstance(exc, errors.CommunicationError)
        self.assertIn("cannot connect", str(exc))

    @async_test
    async def test_commtimeout_bounds_the_handshake(self) -> None:
        gone: defer.Deferred[None] = defer.Deferred()

        class Silent(Protocol):  # accepts, then never answers the CONNECT
            def connectionLost(self, reason: Any = None) -> None:
                gone.callback(None)

        port = reactor.listenTCP(0, Factory.forProtocol(Silent), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        with config_changed(COMMTIMEOUT=0.2):
            proxy = DeferredProxy("PYRO:thing@127.0.0.1:%d" % port.getHost().port)
        self.addCleanup(proxy.close)
        started = time.monotonic()
        exc = await failure_of(proxy.connect())
        self.assertIsInstance(exc, errors.TimeoutError)
        self.assertIn("no handshake reply within 0.2 seconds", str(exc))
        self.assertLess(time.monotonic() - started, 5)
        await gone

    @async_test
    async def test_no_name_server(self) -> None:
        exc = await failure_of(locate_ns("127.0.0.1", pyro4_peers.free_port()))
        self.assertIsInstance(exc, errors.NamingError)

    @async_test
    async def test_patient_proxy_waits_for_the_name_server(self) -> None:
        port = pyro4_peers.free_port()
        proxy = DeferredProxy("PYRONAME:late.thing@127.0.0.1:%d" % port, patient=True,
                              patient_tries=200, backoff=lambda attempt: 0.02)
        self.addCleanup(proxy.close)
        call = proxy.add(20, 22)
        await task.deferLater(reactor, 0.2, lambda: None)
        self.assertFalse(call.called)  # still waiting, no thread involved
        factory = our_server.serve(self)
        uri = factory.register(Servant())
        ns = await threads.deferToThread(pyro4_peers.start_pyro4_nameserver, port=port)
        self.addCleanup(lambda: threads.deferToThread(ns.stop))
        ns.register_name("late.thing", uri)
        self.assertEqual(await call, 42)
