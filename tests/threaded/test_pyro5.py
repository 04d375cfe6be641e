"""PyroDeferredService wrapping a ``Pyro5.api.Proxy``, against Pyro5's own daemons (thread and
multiplex, in background threads: tests/support/pyro5_peers.py).

A Pyro5 proxy belongs to the thread that made it (``_pyroInvoke`` refuses other threads), so
these tests mostly make the workers trade proxies: many concurrent calls over several
workers, item streams whose items are fetched by whichever worker is free, streams ended
and their connections reused, settings changed while copies exist, close() from the
reactor thread. Every service is closed (its threads joined) by a cleanup.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import Pyro5.api
import Pyro5.errors
from Pyro5.api import current_context
from twisted.internet import defer, threads
from twisted.trial import unittest

from pyro.proxy import ItemStream, PyroDeferredService

from ..support.asynctest import async_test, failure_of
from ..support.pyro5_peers import serve_pyro5

WAIT = 5.0


@Pyro5.api.expose
class Servant:
    """Thread-safe: Pyro5's thread server calls it from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clients: set[tuple[str, int]] = set()
        self.notes: list[Any] = []
        self.noted = threading.Event()
        self._value = 0

    def echo(self, value: Any) -> Any:
        with self.lock:
            self.clients.add(tuple(current_context.client_sock_addr))
        return value

    def fail_here(self) -> None:
        raise ValueError("the servant refuses")

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        self._value = value

    @Pyro5.api.oneway
    def note(self, value: Any) -> None:
        self.notes.append(value)
        self.noted.set()

    def count(self, n: int) -> Any:
        return iter(range(n))

    def context(self) -> list[Any]:
        return [str(current_context.correlation_id),
                {key: bytes(value).decode() for key, value in current_context.annotations.items()}]


class _Pyro5ServiceTests:
    SERVERTYPE: str
    timeout = 15

    def setUp(self) -> None:
        self.servant = Servant()
        self.peer = serve_pyro5(self, self.SERVERTYPE, THREADPOOL_SIZE=16)
        self.uri = self.peer.register(self.servant, "servant")

    def service(self, proxy: Any = None, **kwargs: Any) -> PyroDeferredService:
        service = PyroDeferredService(proxy if proxy is not None else Pyro5.api.Proxy(self.uri),
                                      **kwargs)
        self.addCleanup(service.close)
        return service

    @async_test
    async def test_calls_exceptions_and_attributes(self) -> None:
        service = self.service()
        self.assertEqual(await service.echo([1, "two"]), [1, "two"])
        self.assertEqual(await service.callRemote("echo", 3), 3)
        error = await failure_of(service.fail_here())
        self.assertIs(type(error), ValueError)
        text = "".join(Pyro5.errors.get_pyro_traceback(type(error), error, error.__traceback__))
        self.assertIn("Remote traceback", text)
        self.assertIn("fail_here", text)
        self.assertIsInstance(await failure_of(service.no_such_method()), AttributeError)
        self.assertIsNone(await service.setattr("value", 42))
        self.assertEqual(await service.getattr("value"), 42)
        self.assertFalse(await service._pyroBind())  # the worker's copy is connected already

    @async_test
    async def test_many_workers_each_own_their_copy(self) -> None:
        service = self.service(max_workers=4)
        results = await defer.gatherResults([service.echo(i) for i in range(60)])
        self.assertEqual(results, list(range(60)))
        self.assertLessEqual(len(self.servant.clients), 4)
        self.assertGreater(len(service._workers.pool.threads), 1)
        # (a Pyro5 proxy used by a thread that does not own it raises PyroError: none did)

    @async_test
    async def test_oneway(self) -> None:
        service = self.service()
        self.assertIsNone(await service.note("hello"))
        self.assertTrue(await threads.deferToThread(self.servant.noted.wait, WAIT))
        self.assertEqual(self.servant.notes, ["hello"])

    @async_test
    async def test_batch(self) -> None:
        service = self.service()
        batch = service.batch()
        batch.echo(1)
        batch.echo("x")
        self.assertEqual(await batch.send(), [1, "x"])
        batch.echo(2)
        batch.fail_here()
        batch.echo(3)
        error = await failure_of(batch.send())  # Pyro5's _ExceptionWrapper, unwrapped
        self.assertIs(type(error), ValueError)
        self.assertEqual(error._pyroBatchResults, [2])

    @async_test
    async def test_item_streams_move_between_workers(self) -> None:
        service = self.service(max_workers=3)
        streams = [await service.count(5) for _ in range(3)]
        self.assertTrue(all(isinstance(stream, ItemStream) for stream in streams))
        # interleaved reads: each item is fetched by whichever worker is free, on the
        # stream's own (claimed) copy
        items = await defer.gatherResults([stream.next() for stream in streams for _ in range(2)]
                                          + [service.echo("between")])
        self.assertEqual(items, [0, 1, 0, 1, 0, 1, "between"])
        self.assertEqual([item async for item in streams[0]], [2, 3, 4])
        self.assertIsNone(await streams[1].close())
        self.assertIsInstance(await failure_of(streams[1].next()), StopAsyncIteration)
        self.assertEqual(await service.echo("after"), "after")  # spare copies reused

    @async_test
    async def test_settings_changed_while_copies_exist(self) -> None:
        service = self.service(max_workers=2)
        await defer.gatherResults([service.echo(i) for i in range(6)])
        stream = await service.count(3)
        service._pyroTimeout = 5.0  # copies are made anew; the stream's is updated
        service._pyroSerializer = "json"
        self.assertEqual(await service.echo({"a": 1}), {"a": 1})
        self.assertEqual([item async for item in stream], [0, 1, 2])

    @async_test
    async def test_call_context_travels_with_the_call(self) -> None:
        service = self.service()
        correlation_id = uuid.uuid4()
        saved = current_context.correlation_id
        self.addCleanup(setattr, current_context, "correlation_id", saved)
        current_context.correlation_id = correlation_id
        current_context.annotations = {"XTRA": b"extra"}
        self.assertEqual(await service.context(), [str(correlation_id), {"XTRA": "extra"}])
        self.assertEqual(current_context.annotations, {})  # taken by that call

    @async_test
    async def test_close_and_a_fresh_start(self) -> None:
        service = self.service(max_workers=2)
        await defer.gatherResults([service.echo(i) for i in range(4)])
        stream = await service.count(10)
        self.assertEqual(await stream.next(), 0)
        await service.close()  # releases copies owned by the workers from the stopper thread
        self.assertIsNone(service._workers)
        error = await failure_of(stream.next())
        self.assertIsInstance(error, (Pyro5.errors.ConnectionClosedError, StopAsyncIteration))
        self.assertEqual(await service.echo("again"), "again")

    def test_only_pyro_proxies(self) -> None:
        self.assertRaises(TypeError, PyroDeferredService, object())


class ThreadDaemonTests(_Pyro5ServiceTests, unittest.TestCase):
    SERVERTYPE = "thread"


class MultiplexDaemonTests(_Pyro5ServiceTests, unittest.TestCase):
    SERVERTYPE = "multiplex"
