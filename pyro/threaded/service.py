"""``PyroDeferredService``: a ``Pyro4.Proxy`` (or ``Pyro5.api.Proxy``) whose calls return
``Deferred``-s.

It wraps any ``Pyro4.Proxy`` (``PYRO:``, ``PYRONAME:``, ``PYROMETA:``; HMAC key, handshake,
serializer, timeout, retries: whatever the proxy was set up with), or a ``Pyro5.api.Proxy``,
whose copies each worker thread takes ownership of (:mod:`pyro.threaded.generations` holds
what differs). The blocking Pyro4 call runs
in a bounded pool of worker threads (:mod:`pyro.threaded.workers`); the result comes back to
the reactor thread with ``reactor.callFromThread``, one per batch of finished calls. A remote
generator's result is an :class:`ItemStream`; ``service.batch()`` gives a :class:`Batch`.

Why not Pyro4's own asynchronous proxies (``Pyro4.Proxy._pyroAsync()``)? They start one thread
*and one new connection* per call, and their ``FutureResult`` calls its ``then`` callbacks in
that thread. Here a few worker threads each own a copy of the proxy that stays connected
between calls, so connections are reused and bounded, and callbacks run in the reactor thread,
where Twisted code expects them.

Why no ``FutureResult`` (nor Twisted's ``ThreadPool``) per call: the thread hand-off is the
client's overhead, and every microsecond of Python in a worker is GIL time the other threads
queue for. Plain daemon threads take calls from a ``queue.SimpleQueue``, append finished ones
to a deque, and the reactor is woken once per batch of finished calls; the ``Deferred`` holds
the result. The workers' proxy copies use
:class:`pyro.threaded.workerconnection.WorkerConnection` (Pyro4's connection, reading a reply
in one ``recv`` and sending without polling first), because every blocking socket call drops
the GIL and every drop is a hand-off when five threads want it. The measurements behind both
choices are in ``benchmarks/README.md`` ("Design measurements").
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import Pyro4
import Pyro4.naming  # noqa: F401 -- loaded before any worker thread resolves a PYRONAME:
from Pyro4 import constants
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import failure

from .._reactor import default_reactor
from ..batch import CallRecorder, RecordedCall, collect_results
from .generations import ProxyKind, claim, kind_of
from .workerconnection import adopt as adopt_connection
from .workers import Call, ReactorForService, StreamLink, Workers, sendCloseStream

__all__ = ["DEFAULT_MAX_WORKERS", "Batch", "ItemStream", "PyroDeferredService"]

DEFAULT_MAX_WORKERS = 4

"""Worker threads (= connections to the server) per service. Small on purpose: Pyro4's thread
server gives each connection one of its worker threads (40 by default, for all clients)."""


_log = Logger(namespace="pyro.proxy")


class _RemoteMethod:
    """``service.name`` : calling it calls the remote method ``name``."""

    def __init__(self, service: PyroDeferredService, name: str) -> None:
        self._service = service
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return self._service.callRemote(self._name, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<remote method {self._name!r} of {self._service!r}>"


def _endOfStream(reason: failure.Failure) -> failure.Failure:
    # Pyro4's iterator raises the server's StopIteration (or GeneratorExit); a Deferred that
    # fails with StopIteration would turn into RuntimeError in a coroutine or generator.
    if reason.check(StopIteration, GeneratorExit):
        return failure.Failure(StopAsyncIteration())
    return reason


class ItemStream:
    """The result of a remote call that returned an iterator or generator (Pyro4's item
    stream), for reactor-thread code: each item is fetched by a worker thread and delivered
    as a ``Deferred``, as :class:`pyro.client.ItemStream` does for the native client::

        stream = await service.numbers(10)
        async for item in stream: ...           # in a coroutine (ensureDeferred)

        item = yield stream.next()              # Deferred per item (inlineCallbacks)
        yield stream.close()

    - ``next()`` fails with ``StopAsyncIteration`` at the end (``StopIteration`` would turn
      into ``RuntimeError`` in a coroutine or generator), and with the iterator's exception
      (its original type and remote traceback) if it raised one: that also ends the stream,
      as the server drops it; later ``next()`` calls fail with ``StopAsyncIteration``.
    - Items come in order: calls to ``next()`` made before the previous item arrived wait
      here and are sent one at a time. Cancelling one that is waiting or queued skips it;
      cancelling one in progress drops its item (the item is lost, the stream goes on).
    - ``close()`` tells the server to drop the stream (Pyro4's oneway ``close_stream``) and
      fires once that is sent; ``next()`` calls still waiting fail with
      ``StopAsyncIteration``. A stream that is garbage collected unclosed is closed the same
      way. Closing the service closes its open streams: outstanding ``next()`` calls fail
      with ``ConnectionClosedError``, as does the first ``next()`` after that if none was
      outstanding.

    The connection: a stream belongs to the connection it was opened on (Pyro4's daemon drops
    a client's streams when that connection closes, or keeps them ``ITER_STREAM_LINGER``
    seconds). So the proxy copy whose call returned the stream is *pinned* to it: its worker
    thread makes (or reuses) another copy for its next call, and the stream's fetches are
    ordinary jobs on the service's queue, run by whichever worker is free, on the pinned
    copy. No worker waits for a stream, so streams never hold up other calls; the price is
    one more connection per open stream (beyond ``max_workers``). When the stream ends, the
    copy, still connected, serves a later worker that needs one. Settings changed through the
    service after the stream opened reach its next requests when a live connection can take
    them (``_pyroTimeout``, ``_pyroHmacKey``, ``_pyroSerializer``, ``_pyroMaxRetries``), as
    with Pyro4's own stream iterator, which uses the proxy itself.
    """

    def __init__(self, service: PyroDeferredService, workers: Workers,
                 link: StreamLink) -> None:
        self.stream_id = link.streamId
        self._service = service
        self._workers = workers
        self._link = link
        self._busy = False  # one of our calls is submitted and not handed back yet
        self._waiting: deque[Call] = deque()  # ours, not submitted yet, in order
        self._done = False  # no more items: ended, failed or closed
        self._error: BaseException | None = None  # for the next next(), once
        self._finalizer = weakref.finalize(self, workers.reactor.callFromThread,
                                           service._abandonStream, workers, link)
        self._finalizer.atexit = False

    def next(self) -> defer.Deferred[Any]:
        """The next item; fails with ``StopAsyncIteration`` at the end."""
        if self._done:
            error, self._error = self._error, None
            return defer.fail(error if error is not None else StopAsyncIteration())
        call = self._service._newCall(_nextItem, (self._workers, self._link),
                                      f"next item of stream {self.stream_id}")
        self._add(call)
        return call.deferred.addErrback(_endOfStream)

    def close(self) -> defer.Deferred[None]:
        """Drop the stream on the server; fires with ``None`` once ``close_stream`` is sent.
        Calling it again, or after the end, does nothing."""
        if self._done:
            return defer.succeed(None)
        self._end()
        call = self._service._newCall(_closeStream, (self._workers, self._link),
                                      f"close item stream {self.stream_id}")
        self._add(call)
        # The caller may cancel what we return, not the close itself: the connection must be
        # freed in any case.
        result: defer.Deferred[None] = defer.Deferred()

        def relay(outcome: Any) -> None:
            if result.called:
                return
            if isinstance(outcome, failure.Failure) and not (
                    self._workers.closed and outcome.check(
                        self._service._kind.errors.ConnectionClosedError)):
                result.errback(outcome)
            else:  # closing the service closed the stream as well
                result.callback(None)

        call.deferred.addBoth(relay)
        return result

    def __aiter__(self) -> ItemStream:
        return self

    def __anext__(self) -> defer.Deferred[Any]:
        return self.next()

    def __repr__(self) -> str:
        state = "done" if self._done else "open"
        return f"<{type(self).__name__} {self.stream_id} of {self._service!r}; {state}>"

    # -- internals (reactor thread) ----------------------------------------------------------

    def _add(self, call: Call) -> None:
        call.link = self._link
        call.onDone = self._handedBack
        if self._busy:
            self._waiting.append(call)
        else:
            self._busy = True
            self._service._enqueue(self._workers, call)

    def _handedBack(self, call: Call) -> None:
        """One of our calls is back (done, skipped, cancelled or failed by close())."""
        self._busy = False
        if self._link.released or self._workers.closed:
            # The stream is over (or the service's close() failed our calls already).
            self._end()
            self._workers.streams.discard(self)
            waiting, self._waiting = self._waiting, deque()
            for queued in waiting:  # only a close() is left: nothing to close any more
                if not queued.deferred.called:
                    queued.deferred.callback(None)
        elif self._waiting:
            self._busy = True
            self._service._enqueue(self._workers, self._waiting.popleft())

    def _end(self) -> None:
        """No more items: fail the ``next()`` calls not sent yet with StopAsyncIteration (a
        close call queued meanwhile stays)."""
        if self._done:
            return
        self._done = True
        self._finalizer.detach()  # a close() is on its way, or nothing is left to close
        waiting, self._waiting = self._waiting, deque()
        for call in waiting:
            if call.operation is _closeStream:
                self._waiting.append(call)
            elif not call.deferred.called:
                call.deferred.errback(StopAsyncIteration())

    def _serviceClosed(self) -> None:
        """The service was closed (its ``_stop``): our submitted calls fail with
        ``ConnectionClosedError`` there; so do the waiting ones here, or else the next
        ``next()``. The stopper thread sends ``close_stream`` if the connection is idle."""
        error = self._service._kind.errors.ConnectionClosedError(
            f"{self._service._name} was closed; item stream {self.stream_id} is gone")
        outstanding = self._busy or bool(self._waiting)
        if self._done and not outstanding:
            return
        self._done = True
        self._finalizer.detach()
        waiting, self._waiting = self._waiting, deque()
        for call in waiting:
            if not call.deferred.called:
                call.deferred.errback(error)
        if not outstanding:
            self._error = error


class Batch(CallRecorder):
    """Calls collected on a :class:`PyroDeferredService` and sent as one Pyro4 batch message,
    in one worker thread (Pyro4's ``batch``; the same API as :class:`pyro.client.Batch`)::

        batch = service.batch()                 # or Pyro4.batch(service)
        batch.add(1, 2)
        batch.fail("oops")
        results = await batch.send()            # or: await batch()

    ``send()`` fires with the list of results, in order. As in Pyro4 the server stops at the
    first exception: the Deferred then fails with it (its original type, with
    ``_pyroTraceback``), and the results of the calls before it are in its attribute
    ``_pyroBatchResults``. ``send(oneway=True)`` fires with ``None`` once sent (the server
    answers nothing). Sending starts a new, empty batch. Cancellation and ``close()`` work as
    for an ordinary call. ``batch(oneway=False, asynchronous=False)`` is Pyro4's spelling of
    ``send`` (see :class:`pyro.batch.CallRecorder`).
    """

    _target: PyroDeferredService

    def send(self, oneway: bool = False) -> defer.Deferred[list[Any] | None]:
        """Send the collected calls (and start a new, empty batch)."""
        calls = self._take()
        kind = "oneway batch" if oneway else "batch"
        return self._target._submit(_callBatch, (calls, oneway), f"{kind} of {len(calls)} calls")


def _callMethod(proxy: Any, method: str, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
    """Worker thread: one remote method call, through the proxy's own machinery (metadata
    checks, oneway flags, ``_pyroMaxRetries``), so a subclass's behaviour is kept."""
    if kind_of(proxy).metadata_on():
        if not proxy._pyroMethods and not proxy._pyroAttrs:
            proxy._pyroGetMetadata()  # connects; the metadata comes with the handshake
        if method in proxy._pyroAttrs and method not in proxy._pyroMethods:
            # Pyro4's proxy would *read* the attribute here; calling the value makes no sense.
            raise AttributeError(
                f"{method!r} of {proxy._pyroUri} is an exposed attribute, not a method: "
                f"use service.getattr({method!r})")
    return getattr(proxy, method)(*args, **kwargs)


def _getAttribute(proxy: Any, name: str) -> Any:
    return proxy._pyroInvoke("__getattr__", (name,), None)


def _setAttribute(proxy: Any, name: str, value: Any) -> None:
    proxy._pyroInvoke("__setattr__", (name, value), None)


def _bind(proxy: Any) -> bool:
    return proxy._pyroBind()


def _callBatch(proxy: Any, calls: list[RecordedCall], oneway: bool) -> list[Any] | None:
    """Worker thread: one Pyro4 batch message (``Pyro4.batch(proxy)(oneway)``); the results in
    order, or the first exception, raised with the results before it in
    ``_pyroBatchResults``."""
    results = proxy._pyroInvokeBatch(calls, oneway)
    return None if oneway else collect_results(results, kind_of(proxy).exception_wrapper)


def _nextItem(proxy: Any, workers: Workers, link: StreamLink) -> Any:
    """Worker thread, on the stream's own proxy: what ``_StreamResultIterator.__next__`` does.
    Any exception ends the stream: the server drops a stream whose iterator raised (its
    ``StopIteration`` included), and a communication error lost the connection it lived on."""
    try:
        if proxy._pyroConnection is None:  # never a new connection: it would not know us
            raise kind_of(proxy).errors.ConnectionClosedError(
                "the connection for this item stream has been closed")
        return proxy._pyroInvoke("get_next_stream_item", [link.streamId], {},
                                 objectId=constants.DAEMON_NAME)
    except BaseException:
        workers.unpin(link)
        raise


def _closeStream(proxy: Any, workers: Workers, link: StreamLink) -> None:
    """Worker thread, on the stream's own proxy: drop the stream on the server, then free
    the proxy. A lost connection took the stream with it (Pyro4's iterator sends nothing
    then either)."""
    try:
        if proxy._pyroConnection is not None:
            sendCloseStream(proxy, link.streamId)
    finally:
        workers.unpin(link)


class PyroDeferredService:
    """Wrap a ``Pyro4.Proxy`` so that every remote call returns a ``Deferred``.

    ``service.some_method(*args, **kwargs)`` (or ``service.callRemote("some_method", ...)``)
    returns a ``Deferred`` that fires, in the reactor thread, with the result, or fails with
    the remote exception (its original type; ``Pyro4.util.getPyroTraceback(failure.type,
    failure.value, failure.getTracebackObject())`` shows the remote traceback) or with Pyro4's
    own errors (``CommunicationError``, ``TimeoutError`` when the proxy has ``_pyroTimeout``,
    ``NamingError``...).

    How: calls go to a queue served by at most ``max_workers`` daemon threads, started as
    calls come in (the first at the first call). Pyro4 proxies must not be shared between
    threads that call concurrently, so each worker thread makes its own ``copy.copy`` of the
    wrapped proxy (what Pyro4's async machinery does) and keeps it connected between calls: at
    most ``max_workers`` connections, reused. Finished calls are handed back in batches, with
    one ``reactor.callFromThread`` per batch (``callLater`` is not thread-safe).

    - ``service.name(...)`` is always a *call*. Exposed remote attributes are read and written
      with ``service.getattr(name)`` / ``service.setattr(name, value)`` (Deferreds). A remote
      method whose name clashes with this class's own (``close``, ``getattr``...) is reached
      with ``callRemote``.
    - Oneway methods (known from the server's metadata) fire with ``None`` once sent.
    - ``_pyro*`` attributes read and write through to the wrapped proxy. Writing one (e.g.
      ``service._pyroTimeout = 5``, ``service._pyroHmacKey = b"k"``) makes every worker re-copy
      the proxy before its next call, so the new setting reaches connections made earlier.
      Methods read this way (``_pyroReconnect``...) run in the calling thread and may block;
      ``_pyroBind()`` and ``_pyroRelease()`` are this class's own and return Deferreds.
    - A remote method that returns an iterator or generator (a Pyro4 item stream) fires with
      an :class:`ItemStream`: ``async for item in stream``, or ``stream.next()`` (a Deferred
      per item), and ``stream.close()``. Each stream keeps the connection it was opened on
      (one more connection per open stream); its items are fetched by the workers, like
      calls, so an open stream holds no worker. See :class:`ItemStream`.
    - ``service.batch()`` (or ``Pyro4.batch(service)``) collects calls that ``send()`` sends
      as one Pyro4 batch message, in one worker: a Deferred of the list of results, failing
      with the first exception (``send(oneway=True)``: fires with ``None`` once sent). See
      :class:`Batch`.
    - ``Deferred.cancel()`` fails the Deferred with ``CancelledError`` at once; a call that has
      not started yet is never sent, a call in progress has its result dropped (if that
      result is an item stream, the stream is closed).
    - Pyro4's per-thread call context travels with each call: annotations and the correlation
      id set in ``Pyro4.current_context`` by the caller are sent (and, as in Pyro4, cleared
      after the call), and ``Pyro4.current_context.response_annotations`` holds the reply's
      annotations while the Deferred's callbacks run.
    - ``close()`` (alias ``_pyroRelease()``) fails calls still outstanding with
      ``ConnectionClosedError``, breaks connections in use (a hung server cannot hold it up),
      stops the threads, closes open item streams (``close_stream`` on idle connections) and
      releases the connections. Reactor shutdown does the same, through
      a ``before shutdown`` trigger, so it never hangs on worker threads. A call after
      ``close()`` starts afresh.

    :param proxy: any ``Pyro4.Proxy`` (or subclass whose constructor takes just a URI, since
        ``Proxy.__copy__`` calls ``type(proxy)(uri)``). The service never uses it for calls
        itself; it is the template for the workers' copies. A ``PyroPatientProxy`` makes the
        service wait for a name server or object that is not there yet. A
        ``Pyro5.api.Proxy`` works the same way, with Pyro5's errors, ``current_context`` and
        batch results: Pyro5 proxies belong to one thread, so each worker takes ownership
        (``_pyroClaimOwnership()``) of the copy it uses, item streams' copies included as
        they pass between workers, and the stopper thread of those it releases. (Pyro5 has
        no HMAC key; the workers' reading ahead of :mod:`~pyro.threaded.workerconnection`
        is Pyro4's only.)
    :param reactor: provides ``callFromThread`` and system event triggers; ``None`` means the
        global reactor, looked up at the first call (so importing installs no reactor).
    :param max_workers: maximum worker threads, hence concurrent calls; connections: one per
        worker thread, plus one per open item stream.
    :param name: the thread pool's name (thread names and logs).
    """

    # Our own attributes: never forwarded to the proxy nor taken for remote methods.
    _OWN = frozenset({"_wrapped", "_reactor", "_maxWorkers", "_name", "_workers", "_generation",
                      "_stopping", "_waiters", "_triggerID", "_kind"})

    def __init__(self, proxy: Any, reactor: ReactorForService | None = None,
                 max_workers: int = DEFAULT_MAX_WORKERS, name: str | None = None) -> None:
        self._kind: ProxyKind = kind_of(proxy)  # TypeError for anything but a Pyro proxy
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._wrapped = proxy
        self._reactor = reactor
        self._maxWorkers = max_workers
        self._name = name or f"PyroDeferredService({proxy._pyroUri})"
        self._workers: Workers | None = None
        self._generation = 0  # bumped by every _pyro* write; workers re-copy when it changed
        self._stopping: set[Workers] = set()
        self._waiters: list[defer.Deferred[None]] = []
        self._triggerID: tuple[ReactorForService, Any] | None = None

    # -- attribute plumbing ------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally.
        if name in PyroDeferredService._OWN or (name.startswith("__") and name.endswith("__")):
            # Dunders (copy, pickle, inspection, Twisted internals probing for __iter__...)
            # must not turn into remote calls.
            raise AttributeError(name)
        if name.startswith("_pyro"):
            return getattr(self._wrapped, name)
        return _RemoteMethod(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_pyro"):
            setattr(self._wrapped, name, value)
            # After the write, so a worker that sees the new generation copies the new value.
            self._generation += 1
        else:
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        state = "running" if self._workers is not None else "idle"
        return f"<{type(self).__name__} for {self._wrapped._pyroUri}; {state}>"

    # -- public API --------------------------------------------------------------------------

    @property
    def proxy(self) -> Any:
        """The wrapped proxy (the template of the workers' copies)."""
        return self._wrapped

    @property
    def max_workers(self) -> int:
        return self._maxWorkers

    def callRemote(self, method: str, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        """Call the remote ``method``; a Deferred of its result. ``service.method(...)`` is the
        same thing; use this form for names that clash with this class's attributes."""
        return self._submit(_callMethod, (method, args, kwargs), f"call {method}")

    def getattr(self, name: str) -> defer.Deferred[Any]:
        """Read the exposed remote attribute ``name``; a Deferred of its value."""
        return self._submit(_getAttribute, (name,), f"getattr {name}")

    def setattr(self, name: str, value: Any) -> defer.Deferred[None]:
        """Write the exposed remote attribute ``name``; a Deferred that fires with ``None``."""
        return self._submit(_setAttribute, (name, value), f"setattr {name}")

    def batch(self) -> Batch:
        """Collect calls to send as one Pyro4 batch message: see :class:`Batch`.
        ``Pyro4.batch(service)`` (which calls ``service._pyroBatch()``) gives the same."""
        return Batch(self)

    _pyroBatch = batch

    def _pyroBind(self) -> defer.Deferred[bool]:
        """Connect one worker's copy now (handshake, metadata): a cheap "is it there?" check.
        Fires with ``True`` if a new connection was made, ``False`` if it was connected."""
        return self._submit(_bind, (), "bind")

    def close(self) -> defer.Deferred[None]:
        """Release everything: fail outstanding calls with ``ConnectionClosedError``, break
        connections in use, stop the worker threads and close the connections.

        Returns a Deferred that fires (in the reactor thread) when all worker threads of this
        service have exited, so tests can wait for a clean reactor. Joining threads blocks, so
        it happens in a short-lived helper thread, never in the reactor thread. Call it from
        the reactor thread, with the reactor running.
        """
        workers, self._workers = self._workers, None
        if workers is not None:
            self._stop(workers)
        if not self._stopping:
            self._removeTrigger()
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    _pyroRelease = close

    # -- internals ---------------------------------------------------------------------------

    def _submit(self, operation: Callable[..., Any], args: tuple[Any, ...],
                description: str) -> defer.Deferred[Any]:
        """Reactor thread: queue ``operation(proxyCopy, *args)`` on a worker thread."""
        call = self._newCall(operation, args, description)
        try:
            workers = self._start()
        except Exception:
            call.deferred.errback()
            return call.deferred
        self._enqueue(workers, call)
        return call.deferred

    def _newCall(self, operation: Callable[..., Any], args: tuple[Any, ...],
                 description: str, internal: bool = False) -> Call:
        """Reactor thread: a call carrying the caller's Pyro4 call context (an ``internal``
        one, made by the service itself, neither takes nor clears it)."""
        if internal:
            return Call(operation, args, description, {}, None, self._generation)
        context = self._kind.context
        call = Call(operation, args, description, dict(context.annotations),
                     context.correlation_id, self._generation)
        context.annotations = {}  # Pyro4 clears the caller's annotations after each call
        return call

    def _enqueue(self, workers: Workers, call: Call) -> None:
        """Reactor thread: hand ``call`` to ``workers``' threads, starting one more if all are
        busy (as Twisted's ThreadPool would)."""
        pool = workers.pool
        if workers.inFlight >= len(pool.threads) < pool.maxWorkers:
            try:
                pool.grow(lambda: self._run(workers))
            except Exception:  # e.g. "can't start new thread": the threads we have will do
                if not pool.threads:
                    call.deferred.errback()
                    if call.onDone is not None:
                        call.onDone(call)
                    return
                _log.failure("{service!r}: starting a worker thread", service=self)
        workers.pending.add(call)
        workers.inFlight += 1
        pool.jobs.put(call)

    def _start(self) -> Workers:
        if self._workers is None:
            reactor = default_reactor(self._reactor)
            workers = Workers(self._name, self._maxWorkers, reactor)
            self._workers = workers
            if self._triggerID is None:
                self._triggerID = (reactor, reactor.addSystemEventTrigger(
                    "before", "shutdown", self._closeOnShutdown))
            _log.debug("{service!r}: starting up to {count} worker threads",
                       service=self, count=self._maxWorkers)
        return self._workers

    def _run(self, workers: Workers) -> None:
        """Worker thread: run calls from the queue until told to exit. The thread's own copy
        of the proxy lives here, made anew when a ``_pyro*`` setting changed after it was
        made."""
        jobs = workers.pool.jobs
        proxy: Any = None
        generation = -1
        kind = self._kind
        errors = kind.errors
        owned = kind.owned_by_thread
        drain = lambda: self._drain(workers)  # noqa: E731 - one closure per thread
        while True:
            call = jobs.get()
            if call is None:
                return
            # A cancelled call (or one failed by close()) has fired already: never sent.
            if not (call.deferred.called or workers.closed):
                context = kind.context
                link = call.link
                try:
                    if link is not None:  # an item stream's operation, on the stream's copy
                        if not workers.claim(link):
                            raise errors.ConnectionClosedError(
                                f"{self._name} was closed, or the item stream is over")
                        if link.generation < call.generation:
                            self._refreshLink(link, call.generation)
                        target = link.proxy
                        if owned:  # (the stream's copy moves between the workers)
                            claim(target)
                    else:
                        if proxy is None or generation < call.generation:
                            proxy, generation = self._copyProxy(workers, proxy,
                                                                call.generation)
                        if workers.closed:  # closed while we copied: not interrupted
                            raise errors.ConnectionClosedError(f"{self._name} was closed")
                        target = proxy
                    context.annotations = call.annotations
                    context.correlation_id = call.correlationId
                    try:
                        call.outcome = call.operation(target, *call.args)
                    finally:
                        adopt_connection(target)  # see pyro/workerconnection.py
                        if link is not None:
                            workers.unclaim(link)
                        call.responseAnnotations = context.response_annotations
                        context.annotations = {}
                        context.correlation_id = None
                        context.response_annotations = {}
                    if link is not None and isinstance(call.outcome, kind.stream_iterator):
                        # An item that is itself an iterator: the server opened a stream in
                        # the stream. Not supported; drop it at once.
                        nested, call.outcome = call.outcome, None
                        nested.proxy = None
                        sendCloseStream(target, nested.streamId)
                        raise errors.PyroError(
                            "an item stream's item is an iterator: not supported")
                    if link is None and isinstance(call.outcome, kind.stream_iterator):
                        # The stream lives on this copy's connection: the copy goes with the
                        # stream, and this thread takes another one for its next call.
                        iterator, call.outcome = call.outcome, None
                        iterator.proxy = None  # its __del__ would send close_stream
                        assert proxy is not None
                        call.outcome = workers.pin(iterator.streamId, proxy, generation)
                        proxy = None
                except BaseException as error:  # noqa: B036 - every outcome must be delivered
                    call.outcome, call.failed = error, True
            try:
                workers.finished(call, drain)
            except BaseException:  # noqa: B036 - keep the thread serving the queue
                _log.failure("{service!r}: handing back {call}", service=self,
                             call=call.description)
            del call  # an idle thread keeps no result alive

    def _refreshLink(self, link: StreamLink, generation: int) -> None:
        """Worker thread, the stream claimed: ``_pyro*`` settings changed since the stream's
        proxy copy was made. Pyro4's own stream iterator uses the proxy itself, so a changed
        setting applies to its next request; the settings a live connection can take on
        without reconnecting are copied over (a handshake or bind setting would only matter
        to a new connection, and the stream cannot move to one)."""
        current = self._generation  # read first: a racing write bumps it again
        for name in self._kind.live_settings:
            setattr(link.proxy, name, getattr(self._wrapped, name))
        link.generation = max(current, generation)

    def _copyProxy(self, workers: Workers, old: Any,
                   generation: int) -> tuple[Any, int]:
        """Worker thread: a fresh copy of the wrapped proxy (releasing the ``old`` one) and the
        settings generation it reflects. A Pyro5 copy belongs to the thread that made it
        (``copy.copy`` makes it in this worker); a spare one, made by another worker, is
        claimed."""
        if old is not None:
            with workers.lock:
                workers.copies = [p for p in workers.copies if p is not old]
            old._pyroRelease()
        # Read the generation before copying: a write that races with the copy bumps it
        # again afterwards, and the next call copies once more.
        current = self._generation
        spare = workers.takeSpare(max(current, generation))  # an ended stream's connection
        if spare is not None:
            if self._kind.owned_by_thread:
                claim(spare[0])
            return spare
        proxy = copy.copy(self._wrapped)
        if self._kind.owned_by_thread:
            claim(proxy)  # (a subclass's __copy__ may not make it in this thread)
        else:
            proxy._pyroAsync(False)  # the copy of an async-mode proxy would return Futures
        with workers.lock:
            workers.copies.append(proxy)
        return proxy, max(current, generation)

    def _drain(self, workers: Workers) -> None:
        """Reactor thread: fire the Deferreds of every finished call, batch after batch, until
        none is left (calls finishing meanwhile need no wake-up of their own)."""
        while True:
            calls = workers.takeDone()
            if not calls:
                return
            workers.inFlight -= len(calls)
            for call in calls:
                try:
                    self._deliver(workers, call)
                except Exception:
                    _log.failure("{service!r}: delivering {call}", service=self,
                                 call=call.description)

    def _deliver(self, workers: Workers, call: Call) -> None:
        """Reactor thread: fire the call's Deferred, unless it was cancelled or closed."""
        workers.pending.discard(call)
        deferred = call.deferred
        if call.onDone is not None:
            call.onDone(call)  # first, so the stream's state is current in the callbacks
        if isinstance(call.outcome, StreamLink) and not call.failed:
            link, call.outcome = call.outcome, None
            if deferred.called:
                self._abandonStream(workers, link)
            else:
                stream = ItemStream(self, workers, link)
                workers.streams.add(stream)
                call.outcome = stream
        if deferred.called:
            _log.debug("{service!r}: dropped the result of {call} (cancelled or closed)",
                       service=self, call=call.description)
            return
        self._kind.context.response_annotations = call.responseAnnotations
        if call.failed:
            # A Failure of the original type, with the worker's traceback (and Pyro4's
            # ``_pyroTraceback`` for a remote exception).
            deferred.errback(failure.Failure(call.outcome))
        else:
            deferred.callback(call.outcome)

    def _stop(self, workers: Workers) -> None:
        with workers.lock:
            workers.closed = True
        pending, workers.pending = workers.pending, set()
        for call in pending:
            if not call.deferred.called:
                call.deferred.errback(self._kind.errors.ConnectionClosedError(
                    f"{self._name} was closed before {call.description} completed"))
        for stream in list(workers.streams):
            stream._serviceClosed()
        workers.interrupt()
        self._stopping.add(workers)

        def stopInThread() -> None:
            try:
                workers.stop()
            finally:
                workers.reactor.callFromThread(self._stopped, workers)

        threading.Thread(target=stopInThread, name=f"{self._name}-stopper", daemon=True).start()

    def _stopped(self, workers: Workers) -> None:
        """Reactor thread: a generation of workers has exited."""
        self._stopping.discard(workers)
        _log.debug("{service!r}: worker threads stopped", service=self)
        if self._stopping:
            return
        if self._workers is None:
            self._removeTrigger()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _abandonStream(self, workers: Workers, link: StreamLink) -> None:
        """Reactor thread: close a stream nobody will read (its ``call`` was cancelled, or its
        ItemStream was garbage collected unclosed). After close() the stopper does it."""
        if workers.closed or link.released:
            return
        call = self._newCall(_closeStream, (workers, link), f"close item stream {link.streamId}",
                             internal=True)
        call.link = link
        self._enqueue(workers, call)
        call.deferred.addErrback(lambda f: None)  # close() may fail it: nobody is waiting

    def _removeTrigger(self) -> None:
        # Without this, the reactor would keep every service ever used alive until shutdown.
        if self._triggerID is not None and self._workers is None:
            (reactor, triggerID), self._triggerID = self._triggerID, None
            reactor.removeSystemEventTrigger(triggerID)

    def _closeOnShutdown(self) -> defer.Deferred[None]:
        # The reactor is firing this trigger: it must not be removed any more.
        self._triggerID = None
        return self.close()
