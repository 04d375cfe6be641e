"""Our native client against our server, entirely in memory (Twisted's ``iosim``, no sockets).

Both roles speak through the same wire layer: what the server's dispatcher encodes, the
client's protocol decodes, and back. As Twisted's own AMP tests do, the connections are
``iosim`` pumps between a ``MemoryReactorClock``'s ``connectTCP`` and ``listenTCP``, and time
is that reactor's clock: the tests are deterministic and fast, and cover every kind of
exchange (handshake with metadata, calls, exceptions with tracebacks, oneway, attributes,
batches, item streams, asynchronous servants, closing).
"""

from __future__ import annotations

from typing import Any

import Pyro4
from Pyro4 import errors
from twisted.internet import defer, task
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import ConnectionCompleter, IOPump
from twisted.trial.unittest import TestCase

from pyro.client import DeferredProxy
from pyro.protocol import Pyro4ProtocolFactory

from ..support.config import patch_config

PORT = 9999


@Pyro4.expose
class Servant:
    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.events: list[Any] = []
        self._value = 1

    def add(self, a: int, b: int) -> int:
        return a + b

    def fail(self, text: str) -> None:
        raise ValueError(text)

    @Pyro4.oneway
    def note(self, item: Any) -> None:
        self.events.append(item)

    def later(self, seconds: float, value: Any) -> defer.Deferred[Any]:
        return task.deferLater(self.clock, seconds, lambda: value)

    async def later_async(self, seconds: float, value: Any) -> Any:
        await task.deferLater(self.clock, seconds, lambda: None)
        return value

    def count(self, n: int) -> Any:
        yield from range(n)

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        self._value = value


class InMemoryTests(TestCase):
    def setUp(self) -> None:
        patch_config(self, ONEWAY_THREADED=False)  # a MemoryReactor has no thread pool
        self.reactor = MemoryReactorClock()
        self.factory = Pyro4ProtocolFactory(reactor=self.reactor)
        self.reactor.listenTCP(PORT, self.factory, interface="127.0.0.1")
        self.factory.setAddress("127.0.0.1", PORT)
        self.servant = Servant(self.reactor)
        self.uri = self.factory.register(self.servant, "servant")
        self.completer = ConnectionCompleter(self.reactor)
        self.pumps: list[IOPump] = []

    def proxy(self, **options: Any) -> DeferredProxy:
        proxy = DeferredProxy(self.uri, reactor=self.reactor, **options)
        self.addCleanup(self.close, proxy)
        return proxy

    def close(self, proxy: DeferredProxy) -> None:
        done = proxy.close()
        self.pump()
        self.successResultOf(done)

    def pump(self) -> None:
        """Complete every connection asked for and move every byte, until nothing moves."""
        for _ in range(20):
            while (pump := self.completer.succeedOnce()) is not None:
                self.pumps.append(pump)
            moved = [pump.pump() for pump in self.pumps]
            if not any(moved) and not self.reactor.tcpClients:
                return

    def result(self, d: defer.Deferred[Any]) -> Any:
        self.pump()
        return self.successResultOf(d)

    def failure(self, d: defer.Deferred[Any], *types: type[BaseException]) -> Any:
        self.pump()
        return self.failureResultOf(d, *types)

    def test_call(self) -> None:
        proxy = self.proxy()
        self.assertEqual(self.result(proxy.add(1, 2)), 3)
        self.assertEqual(self.result(proxy.add("a", "b")), "ab")
        self.assertEqual(len(self.factory.protocols), 1)  # one connection, reused

    def test_metadata_arrives_with_the_handshake(self) -> None:
        proxy = self.proxy()
        self.result(proxy.add(1, 2))
        self.assertEqual(proxy._pyroOneway, {"note"})
        self.assertIn("value", proxy._pyroAttrs)
        failure = self.failure(proxy.nonexistent(), AttributeError)
        self.assertIn("nonexistent", str(failure.value))

    def test_exception_with_remote_traceback(self) -> None:
        failure = self.failure(self.proxy().fail("boom"), ValueError)
        self.assertEqual(failure.value.args, ("boom",))
        traceback = "".join(failure.value._pyroTraceback)
        self.assertIn("raise ValueError(text)", traceback)

    def test_oneway(self) -> None:
        proxy = self.proxy()
        self.assertIsNone(self.result(proxy.note("x")))
        self.assertEqual(self.result(proxy.add(0, 0)), 0)  # after the oneway, on the same line
        self.assertEqual(self.servant.events, ["x"])

    def test_attributes(self) -> None:
        proxy = self.proxy()
        self.assertEqual(self.result(proxy.getattr("value")), 1)
        self.result(proxy.setattr("value", 5))
        self.assertEqual(self.servant.value, 5)

    def test_batch(self) -> None:
        batch = self.proxy().batch()
        batch.add(1, 2)
        batch.add(3, 4)
        self.assertEqual(self.result(batch.send()), [3, 7])
        batch.add(1, 1)
        batch.fail("third")
        failure = self.failure(batch.send(), ValueError)
        self.assertEqual(failure.value._pyroBatchResults, [2])

    def test_item_stream(self) -> None:
        proxy = self.proxy()
        stream = self.result(proxy.count(3))
        items = [self.result(stream.next()) for _ in range(3)]
        self.assertEqual(items, [0, 1, 2])
        self.failure(stream.next(), StopAsyncIteration)

    def test_asynchronous_servants(self) -> None:
        proxy = self.proxy()
        deferred, coroutine = proxy.later(2.0, "d"), proxy.later_async(1.0, "c")
        self.pump()
        self.assertNoResult(deferred)
        self.reactor.advance(2.0)
        self.pump()
        self.reactor.advance(1.0)
        self.assertEqual(self.result(deferred), "d")
        self.assertEqual(self.result(coroutine), "c")

    def test_timeout(self) -> None:
        proxy = self.proxy(timeout=1.0)
        d = proxy.later(5.0, "late")
        self.pump()
        self.reactor.advance(1.0)
        self.failure(d, errors.TimeoutError)
        self.reactor.advance(4.0)  # the late reply is read and dropped; the line stays usable
        self.assertEqual(self.result(proxy.add(1, 1)), 2)

    def test_unknown_object(self) -> None:
        proxy = DeferredProxy("PYRO:nobody@127.0.0.1:%d" % PORT, reactor=self.reactor)
        self.addCleanup(self.close, proxy)
        failure = self.failure(proxy.add(1, 2), errors.CommunicationError, errors.DaemonError)
        self.assertIn("unknown object", str(failure.value))

    def test_hmac_keys(self) -> None:
        self.factory._pyroHmacKey = b"secret"
        self.assertEqual(self.result(self.proxy(hmac_key=b"secret").add(2, 2)), 4)
        failure = self.failure(self.proxy(hmac_key=b"wrong").add(2, 2),
                               errors.CommunicationError)
        self.assertIn("hmac", str(failure.value).lower())

    def test_close_lets_the_server_forget_the_connection(self) -> None:
        proxy = DeferredProxy(self.uri, reactor=self.reactor)
        self.result(proxy.add(1, 2))
        self.assertEqual(len(self.factory.protocols), 1)
        done = proxy.close()
        self.pump()
        self.successResultOf(done)
        self.assertEqual(self.factory.protocols, set())
