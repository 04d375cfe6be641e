"""PyroDeferredService: item streams and batches, against real servers: Pyro4 4.82's own
daemons (thread and multiplex, in background threads, see tests/support/pyro4_peers.py) and ours
(``Pyro4ProtocolFactory`` on a loopback port, see tests/support/our_server.py).

Trial tests (they return Deferreds; pytest runs them). Nothing sleeps: server-side effects
(a generator closed, a oneway batch done) are threading.Events set by the servant, waited for
in a thread; every service is closed, and its threads joined, by a cleanup.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import Pyro4
import Pyro4.errors
import Pyro4.util
import pytest
from twisted.internet import defer, threads
from twisted.python import threadable
from twisted.trial import unittest

from pyro.protocol import Pyro4ProtocolFactory
from pyro.proxy import Batch, ItemStream, PyroDeferredService

from ..support import our_server, pyro4_peers
from ..support.asynctest import async_test, failure_of

# Pyro4 4.82's request loop calls threading.Event.isSet(), deprecated since Python 3.10.
pytestmark = pytest.mark.filterwarnings("ignore:isSet\\(\\) is deprecated:DeprecationWarning")

WAIT = 5.0  # seconds a thread waits for a server-side event before the test fails




def remote_traceback(error: BaseException) -> str:
    return "".join(Pyro4.util.getPyroTraceback(type(error), error, error.__traceback__))


@Pyro4.expose
class StreamServant:
    """Generators that tell the test when the server let go of them, and which connection
    each item went over. Thread-safe (Pyro4's thread server)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clients: set[tuple[str, int]] = set()  # every connection that called us
        self.closed: dict[str, threading.Event] = {}  # generator tag -> its finally ran
        self.itemClients: dict[str, list[Any]] = {}  # generator tag -> connection per item
        self.calls: list[Any] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.noted = threading.Event()

    def _client(self) -> tuple[str, int]:
        client = tuple(Pyro4.current_context.client_sock_addr)
        with self.lock:
            self.clients.add(client)
        return client

    def _event(self, tag: str) -> threading.Event:
        with self.lock:
            return self.closed.setdefault(tag, threading.Event())

    def _stream(self, tag: str, items: Iterator[Any]) -> Iterator[Any]:
        # The event fires when the generator is over on the server: exhausted or failed (its
        # ``finally``; the server may keep the finished generator alive a while, e.g. through
        # the exception's traceback), or dropped early (garbage: ``finally`` runs for a
        # started generator, the finalizer for an unstarted one too).
        event = self._event(tag)

        def generator() -> Iterator[Any]:
            try:
                yield from items
            finally:
                event.set()

        stream = generator()
        weakref.finalize(stream, event.set)
        return stream

    def count(self, tag: str, n: int) -> Iterator[int]:
        """A stream of 0..n-1, recording the connection of the call and of every item."""
        self.itemClients[tag] = [self._client()]
        return self._stream(tag, self._counting(tag, n))

    def _counting(self, tag: str, n: int) -> Iterator[int]:
        for i in range(n):
            self.itemClients[tag].append(self._client())
            yield i

    def broken(self, tag: str, good: int) -> Iterator[int]:
        return self._stream(tag, self._breaking(good))

    def _breaking(self, good: int) -> Iterator[int]:
        yield from range(good)
        raise ValueError("the stream broke")

    def serializers(self, tag: str, n: int) -> Iterator[int]:
        """A stream of the serializer id of each item's request."""
        def ids() -> Iterator[int]:
            for _ in range(n):
                yield Pyro4.current_context.serializer_id
        return self._stream(tag, ids())

    def add(self, a: int, b: int) -> int:
        self._client()
        self.calls.append(("add", a, b))
        return a + b

    def fail(self, message: str) -> None:
        self.calls.append(("fail", message))
        raise ValueError(message)

    def block(self) -> str:
        """Only against Pyro4's daemons: it blocks the thread serving it."""
        self.entered.set()
        self.release.wait(WAIT)
        return "released"

    @Pyro4.oneway
    def note(self, value: Any) -> None:
        self.calls.append(("note", value))
        self.noted.set()


class _StreamTests:
    """The tests; a subclass provides ``serve`` (one of the three servers) and
    ``responses`` (its table of open streams)."""

    timeout = 20

    def serve(self, servant: Any) -> Pyro4.URI:
        raise NotImplementedError

    def responses(self) -> dict[str, Any]:
        raise NotImplementedError

    def setUp(self) -> None:
        self.servant = StreamServant()
        self.uri = self.serve(self.servant)

    def service(self, **kwargs: Any) -> PyroDeferredService:
        service = PyroDeferredService(Pyro4.Proxy(self.uri), **kwargs)
        self.addCleanup(service.close)
        return service

    def closedOnServer(self, tag: str) -> defer.Deferred[None]:
        """Fires when the server has let go of generator ``tag``."""
        event = self.servant._event(tag)

        def check(done: bool) -> None:
            self.assertTrue(done, f"the server never closed the generator {tag!r}")

        return threads.deferToThread(event.wait, WAIT).addCallback(check)

    # -- item streams ------------------------------------------------------------------------

    @async_test
    async def test_async_for_reads_the_whole_stream(self):
        service = self.service()
        stream = await service.count("all", 5)
        self.assertIsInstance(stream, ItemStream)
        self.assertEqual([item async for item in stream], [0, 1, 2, 3, 4])
        self.assertIsInstance(await failure_of(stream.next()), StopAsyncIteration)
        self.assertIsNone(await stream.close())  # nothing left to close
        await self.closedOnServer("all")
        self.assertEqual(self.responses(), {})

    @defer.inlineCallbacks
    def test_next_deferreds_fire_in_order_in_the_reactor_thread(self):
        service = self.service(max_workers=4)
        stream = yield service.count("order", 6)
        where = []

        def record(item):
            where.append(threadable.isInIOThread())
            return item

        # Asked for all at once: sent one at a time, in order, by any of the four workers.
        items = yield defer.gatherResults([stream.next().addCallback(record)
                                           for _ in range(6)])
        self.assertEqual(items, list(range(6)))
        self.assertEqual(where, [True] * 6)
        end = stream.next()
        yield self.assertFailure(end, StopAsyncIteration)

    @async_test
    async def test_items_come_over_the_connection_that_opened_the_stream(self):
        service = self.service(max_workers=2)
        first = await service.count("first", 4)
        second = await service.count("second", 4)
        # Interleaved with each other and with ordinary calls, on two workers.
        results = await defer.gatherResults(
            [d for _ in range(4) for d in (first.next(), service.add(1, 1), second.next())])
        self.assertEqual(results[0::3], [0, 1, 2, 3])
        self.assertEqual(results[1::3], [2] * 4)
        self.assertEqual(results[2::3], [0, 1, 2, 3])
        for tag in ("first", "second"):
            opener, *items = self.servant.itemClients[tag]
            self.assertEqual(items, [opener] * 4, tag)
        self.assertNotEqual(self.servant.itemClients["first"][0],
                            self.servant.itemClients["second"][0])
        await first.close()
        await second.close()

    @async_test
    async def test_an_open_stream_does_not_hold_up_the_only_worker(self):
        service = self.service(max_workers=1)
        stream = await service.count("pinned", 3)
        self.assertEqual(await stream.next(), 0)
        # The stream's connection is its own: the worker goes on with another one.
        self.assertEqual(await service.add(2, 3), 5)
        self.assertEqual(await stream.next(), 1)
        other = await service.count("other", 2)
        self.assertEqual([item async for item in other], [0, 1])
        self.assertEqual([item async for item in stream], [2])
        self.assertEqual(len(service._workers.pool.threads), 1)

    @async_test
    async def test_settings_changed_later_reach_an_open_stream(self):
        """Pyro4's own stream iterator uses the proxy itself, so a setting changed after the
        stream was opened applies to its next requests; here too."""
        serpent, json = (Pyro4.util.get_serializer(name).serializer_id
                         for name in ("serpent", "json"))
        service = self.service(max_workers=1)
        service._pyroSerializer = "serpent"
        stream = await service.serializers("settings", 3)
        self.assertEqual(await stream.next(), serpent)
        service._pyroSerializer = "json"
        self.assertEqual(await stream.next(), json)
        self.assertEqual(await service.add(1, 2), 3)  # the worker's own copy follows too
        service._pyroSerializer = "serpent"
        self.assertEqual([item async for item in stream], [serpent])

    @async_test
    async def test_connections_of_ended_streams_are_reused(self):
        service = self.service(max_workers=1)
        for round in range(4):
            stream = await service.count(f"reuse{round}", 2)
            self.assertEqual([item async for item in stream], [0, 1])
            self.assertEqual(await service.add(round, 1), round + 1)
        # One connection for the worker, one for the stream of the moment: swapped, not new.
        self.assertLessEqual(len(self.servant.clients), 2)

    @async_test
    async def test_early_close_drops_the_stream_on_the_server(self):
        service = self.service()
        stream = await service.count("early", 100)
        self.assertEqual(await stream.next(), 0)
        self.assertEqual(await stream.next(), 1)
        waiting = stream.next()
        self.assertIsNone(await stream.close())
        self.assertEqual(await waiting, 2)  # asked before close(): still delivered
        await self.closedOnServer("early")
        self.assertEqual(self.responses(), {})
        self.assertIsInstance(await failure_of(stream.next()), StopAsyncIteration)
        self.assertIsNone(await stream.close())
        self.assertEqual(await service.add(1, 2), 3)

    @async_test
    async def test_close_fails_the_next_calls_not_sent_yet(self):
        service = self.service()
        stream = await service.count("queued", 100)
        inFlight, queued = stream.next(), stream.next()  # the second waits for the first
        closing = stream.close()
        self.assertIsInstance(await failure_of(queued), StopAsyncIteration)
        self.assertEqual(await inFlight, 0)
        self.assertIsNone(await closing)
        await self.closedOnServer("queued")

    @async_test
    async def test_error_in_the_middle_of_a_stream(self):
        service = self.service()
        stream = await service.broken("broken", 2)
        self.assertEqual(await stream.next(), 0)
        self.assertEqual(await stream.next(), 1)
        error = await failure_of(stream.next())
        self.assertIsInstance(error, ValueError)
        self.assertEqual(str(error), "the stream broke")
        text = remote_traceback(error)
        self.assertIn("Remote traceback", text)
        self.assertIn("_breaking", text)
        self.assertIsInstance(await failure_of(stream.next()), StopAsyncIteration)
        await self.closedOnServer("broken")
        self.assertEqual(self.responses(), {})
        self.assertEqual(await service.add(1, 1), 2)

    @async_test
    async def test_error_in_the_middle_ends_async_for(self):
        service = self.service()
        stream = await service.broken("loop", 3)
        seen = []
        with self.assertRaises(ValueError):
            async for item in stream:
                seen.append(item)
        self.assertEqual(seen, [0, 1, 2])

    @async_test
    async def test_cancelled_next_skips_or_drops_one_item(self):
        service = self.service(max_workers=1)
        stream = await service.count("cancel", 5)
        first, second = stream.next(), stream.next()
        second.cancel()  # waiting behind the first: never sent
        self.assertIsInstance(await failure_of(second), defer.CancelledError)
        self.assertEqual(await first, 0)
        self.assertEqual(await stream.next(), 1)
        third = stream.next()
        third.cancel()  # submitted already: its item (2) is dropped, or it is skipped
        self.assertIsInstance(await failure_of(third), defer.CancelledError)
        rest = [item async for item in stream]
        self.assertIn(rest, ([2, 3, 4], [3, 4]))

    @async_test
    async def test_closing_the_service_closes_open_streams(self):
        service = self.service()
        stream = await service.count("service", 100)
        self.assertEqual(await stream.next(), 0)
        await service.close()
        await self.closedOnServer("service")  # close_stream sent on the idle connection
        self.assertEqual(self.responses(), {})
        error = await failure_of(stream.next())
        self.assertIsInstance(error, Pyro4.errors.ConnectionClosedError)
        self.assertIsInstance(await failure_of(stream.next()), StopAsyncIteration)
        self.assertIsNone(await stream.close())
        self.assertEqual(await service.add(1, 2), 3)  # the service starts afresh

    @async_test
    async def test_unclosed_stream_is_closed_when_collected(self):
        service = self.service()
        stream = await service.count("forgotten", 100)
        self.assertEqual(await stream.next(), 0)
        del stream
        gc.collect()
        await self.closedOnServer("forgotten")

    # -- batches -----------------------------------------------------------------------------

    @async_test
    async def test_batch_results_in_order(self):
        service = self.service()
        batch = service.batch()
        self.assertIsInstance(batch, Batch)
        batch.add(1, 2)
        batch.add(3, 4)
        self.assertEqual(len(batch), 2)
        self.assertEqual(await batch.send(), [3, 7])
        self.assertEqual(len(batch), 0)  # sent: a new, empty batch
        pyro4Style = Pyro4.batch(service)  # service._pyroBatch()
        self.assertIsInstance(pyro4Style, Batch)
        pyro4Style.add(5, 5)
        self.assertEqual(await pyro4Style(), [10])
        self.assertEqual(await service.batch().send(), [])

    @async_test
    async def test_batch_stops_at_the_first_exception(self):
        service = self.service()
        batch = service.batch()
        batch.add(1, 1)
        batch.fail("in a batch")
        batch.add(2, 2)
        error = await failure_of(batch.send())
        self.assertIsInstance(error, ValueError)
        self.assertEqual(str(error), "in a batch")
        self.assertEqual(error._pyroBatchResults, [2])
        self.assertIn("in a batch", remote_traceback(error))
        self.assertEqual(self.servant.calls, [("add", 1, 1), ("fail", "in a batch")])

    @defer.inlineCallbacks
    def test_batch_failure_arrives_in_the_reactor_thread(self):
        service = self.service()
        batch = service.batch()
        batch.fail("where")
        where = []
        yield batch.send().addErrback(lambda f: where.append(threadable.isInIOThread()))
        self.assertEqual(where, [True])

    @async_test
    async def test_oneway_batch(self):
        service = self.service()
        batch = service.batch()
        batch.note("batched")
        self.assertIsNone(await batch.send(oneway=True))
        self.assertTrue(await threads.deferToThread(self.servant.noted.wait, WAIT))
        self.assertEqual(self.servant.calls, [("note", "batched")])
        with self.assertRaises(Pyro4.errors.PyroError):
            batch(oneway=True, asynchronous=True)

    @async_test
    async def test_batches_streams_and_calls_together(self):
        service = self.service(max_workers=2)
        stream = await service.count("mixed", 3)
        batch = service.batch()
        batch.add(1, 2)
        batch.add(2, 3)
        results = await defer.gatherResults(
            [batch.send(), stream.next(), service.add(0, 1), stream.next()])
        self.assertEqual(results, [[3, 5], 0, 1, 1])
        self.assertEqual([item async for item in stream], [2])


class OurServerStreamTests(_StreamTests, unittest.TestCase):
    def serve(self, servant: Any) -> Pyro4.URI:
        self.factory = our_server.serve(self, Pyro4ProtocolFactory())
        return self.factory.register(servant, "streams")

    def responses(self) -> dict[str, Any]:
        return self.factory.streaming_responses


class _Pyro4StreamTests(_StreamTests):
    SERVERTYPE: str

    def serve(self, servant: Any) -> Pyro4.URI:
        self.peer = pyro4_peers.serve_pyro4(self, self.SERVERTYPE)
        # Cleanups run last-in first-out: services close before a blocked servant is let go.
        self.addCleanup(servant.release.set)
        return self.peer.register(servant, "streams")

    def responses(self) -> dict[str, Any]:
        return self.peer.daemon.streaming_responses

    @async_test
    async def test_closing_the_service_breaks_a_fetch_in_progress(self):
        @Pyro4.expose
        class Hanging:
            def __init__(self) -> None:
                self.entered = threading.Event()
                self.release = threading.Event()

            def hang(self) -> Iterator[str]:
                yield "first"
                self.entered.set()
                self.release.wait(WAIT)
                yield "late"

        hanging = Hanging()
        self.addCleanup(hanging.release.set)
        service = PyroDeferredService(Pyro4.Proxy(self.peer.register(hanging)))
        self.addCleanup(service.close)
        stream = await service.hang()
        self.assertEqual(await stream.next(), "first")
        fetch = stream.next()
        await threads.deferToThread(hanging.entered.wait, WAIT)
        closed = service.close()
        self.assertIsInstance(await failure_of(fetch), Pyro4.errors.ConnectionClosedError)
        await closed  # did not wait for the servant
        self.assertFalse(hanging.release.is_set())

    @async_test
    async def test_a_cancelled_call_closes_the_stream_it_returns(self):
        @Pyro4.expose
        class Slow:
            def __init__(self, servant: StreamServant) -> None:
                self.servant = servant

            def slowCount(self) -> Iterator[int]:
                self.servant.entered.set()
                self.servant.release.wait(WAIT)
                return self.servant.count("cancelled", 10)

        service = PyroDeferredService(Pyro4.Proxy(self.peer.register(Slow(self.servant))))
        self.addCleanup(service.close)
        call = service.slowCount()
        await threads.deferToThread(self.servant.entered.wait, WAIT)
        call.cancel()
        self.assertIsInstance(await failure_of(call), defer.CancelledError)
        self.servant.release.set()
        await self.closedOnServer("cancelled")  # the result was a stream: closed for us

    @async_test
    async def test_cancelled_batch_before_start_is_never_sent(self):
        service = self.service(max_workers=1)
        blocked = service.block()  # occupies the only worker (on the multiplex server: all)
        await threads.deferToThread(self.servant.entered.wait, WAIT)
        batch = service.batch()
        batch.add(1, 1)
        never = batch.send()
        never.cancel()
        self.assertIsInstance(await failure_of(never), defer.CancelledError)
        self.servant.release.set()
        self.assertEqual(await blocked, "released")
        batch.add(2, 2)
        self.assertEqual(await batch.send(), [4])
        self.assertEqual(self.servant.calls, [("add", 2, 2)])


class Pyro4ThreadServerStreamTests(_Pyro4StreamTests, unittest.TestCase):
    SERVERTYPE = "thread"


class Pyro4MultiplexServerStreamTests(_Pyro4StreamTests, unittest.TestCase):
    SERVERTYPE = "multiplex"
